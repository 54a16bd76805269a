package dynamodb

// ChunkSize is the largest value stored in one item, for the tests of
// chunked values.
const ChunkSize = chunkSize
