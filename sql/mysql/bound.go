package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/certcache/certcache/sql/internal/core"
)

// socketBound bounds a Get's query on a connection the URL opener dialed
// by that connection's socket deadline (see core.DBConn.Bound), as
// sql/postgres does: watching a context costs database/sql a goroutine and
// a derived context per query. The driver dials through dial, and a
// connector finds, for each driver connection it makes, the socket under
// it.
type socketBound struct {
	inner  driver.Connector
	dialer net.Dialer
	socks  sync.Map // driver.Conn → *socket, until the socket closes

	// perRead is set when the URL set readTimeout or writeTimeout: the
	// driver then sets a deadline of its own before every read or write,
	// which would replace the call's.
	perRead bool
}

// socket is a network connection that socketBound dialed: it forgets
// itself when the driver closes it.
type socket struct {
	net.Conn
	b *socketBound

	mu     sync.Mutex
	owner  driver.Conn // set once the driver's handshake succeeded
	closed bool
}

// dialSlot carries, in the context of one Connect, the socket its dial
// made.
type dialSlot struct{ s *socket }

type dialSlotKey struct{}

// dial is the driver's DialFunc.
func (b *socketBound) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := b.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	s := &socket{Conn: nc, b: b}
	if slot, ok := ctx.Value(dialSlotKey{}).(*dialSlot); ok {
		slot.s = s
	}
	return s, nil
}

// Connect implements driver.Connector.
func (b *socketBound) Connect(ctx context.Context) (driver.Conn, error) {
	var slot dialSlot
	dc, err := b.inner.Connect(context.WithValue(ctx, dialSlotKey{}, &slot))
	if err != nil || slot.s == nil {
		return dc, err
	}
	s := slot.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.owner = dc
		b.socks.Store(dc, s) // before database/sql, hence Bound, sees dc
	}
	return dc, nil
}

// Driver implements driver.Connector.
func (b *socketBound) Driver() driver.Driver { return b.inner.Driver() }

// Bound implements core.ConnBound.
func (b *socketBound) Bound(c *sql.Conn, deadline time.Time) (core.Deadliner, bool) {
	if b.perRead {
		return nil, false
	}
	var s *socket
	c.Raw(func(dc any) error {
		if v, ok := b.socks.Load(dc); ok {
			s = v.(*socket)
		}
		return nil
	})
	if s == nil || s.SetDeadline(deadline) != nil {
		return nil, false
	}
	return s, true
}

// Close forgets s and closes it.
func (s *socket) Close() error {
	s.mu.Lock()
	if !s.closed && s.owner != nil {
		s.b.socks.Delete(s.owner)
	}
	s.closed = true
	s.mu.Unlock()
	return s.Conn.Close()
}

// SyscallConn hands the driver's liveness check (a read of the idle
// socket) the file descriptor, as an unwrapped TCP or Unix connection
// would.
func (s *socket) SyscallConn() (syscall.RawConn, error) {
	sc, ok := s.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("certcache/mysql: connection has no file descriptor")
	}
	return sc.SyscallConn()
}
