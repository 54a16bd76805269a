package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeConnector stands in for the MySQL driver's connector: its Connect
// dials through the socketBound's dial, as the driver's does through
// Config.DialFunc, and fails the handshake when told to.
type fakeConnector struct {
	b        *socketBound
	addr     string
	failNext bool
}

func (f *fakeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	nc, err := f.b.dial(ctx, "tcp", f.addr)
	if err != nil {
		return nil, err
	}
	if f.failNext {
		f.failNext = false
		nc.Close() // as the driver closes a connection whose handshake failed
		return nil, errors.New("handshake failed")
	}
	return &fakeConn{nc: nc}, nil
}

func (f *fakeConnector) Driver() driver.Driver { return nil }

type fakeConn struct{ nc net.Conn }

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (c *fakeConn) Close() error                        { return c.nc.Close() }
func (c *fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }

func socks(b *socketBound) int {
	n := 0
	b.socks.Range(func(any, any) bool { n++; return true })
	return n
}

// TestSocketBound: Bound finds the socket under a database/sql connection
// and sets its deadline; a socket is forgotten when it closes, and one
// whose handshake failed is never remembered.
func TestSocketBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	b := &socketBound{}
	fc := &fakeConnector{b: b, addr: ln.Addr().String(), failNext: true}
	b.inner = fc
	db := sql.OpenDB(b)
	defer db.Close()
	ctx := context.Background()

	if _, err := db.Conn(ctx); err == nil {
		t.Fatal("Conn with a failing handshake succeeded")
	}
	if n := socks(b); n != 0 {
		t.Errorf("after a failed handshake: %d sockets remembered, want 0", n)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Hour)
	d, ok := b.Bound(conn, deadline)
	if !ok || d == nil {
		t.Fatalf("Bound = %v, %v; want the socket", d, ok)
	}
	s := d.(*socket)
	var dc driver.Conn
	conn.Raw(func(c any) error { dc = c.(driver.Conn); return nil })
	if s.owner != dc {
		t.Error("Bound found the socket of another connection")
	}
	// The deadline is set: a read of the silent server times out.
	if err := s.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := s.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read past the deadline = %v, want a timeout", err)
	}
	if _, err := s.SyscallConn(); err != nil {
		t.Errorf("SyscallConn: %v", err)
	}

	b.perRead = true
	if _, ok := b.Bound(conn, deadline); ok {
		t.Error("Bound succeeded although the driver sets deadlines per read")
	}
	b.perRead = false

	conn.Raw(func(any) error { return driver.ErrBadConn }) // drops it
	conn.Close()
	if n := socks(b); n != 0 {
		t.Errorf("after the connection closed: %d sockets remembered, want 0", n)
	}
}
