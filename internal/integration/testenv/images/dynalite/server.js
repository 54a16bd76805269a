// server.js starts dynalite on one address, 127.0.0.1 unless told otherwise
// (dynalite 3's own cli.js listens on every address), in memory, with tables
// ACTIVE at once rather than after dynalite's default half second in
// CREATING state.
// Usage: node server.js PORT [BIND-ADDRESS]
'use strict'
const dynalite = require('/opt/dynalite/node_modules/dynalite')
const port = Number(process.argv[2] || 4567)
const host = process.argv[3] || '127.0.0.1'
if (process.pid === 1) process.on('SIGINT', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }).listen(port, host, function () {
  console.log('dynalite listening on %s:%d', host, this.address().port)
})
