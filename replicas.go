package certcache

import (
	"fmt"

	"github.com/certcache/certcache/driver"
)

// Replica reads. Coordination reads a key again after taking its order
// lease, to find a certificate another node stored and let go of between
// the miss and the lease. A driver that reads from replicas may miss a
// certificate just stored on the primary, and order it a second time. Such
// a driver says so with a method
//
//	ReplicaReads() string
//
// returning the setting that sends its reads to replicas (a URL parameter,
// "read_only=true"), or "" when it reads from the primary. Open finds it
// with a type assertion, as it finds driver.LeaseDriver, and refuses the URL
// unless coordination is off. It is a method and not an exported
// interface: it concerns only drivers opened from a URL, and the one
// backend that has it (redis) documents its parameters.

// refusesCoordination returns an error wrapping ErrInvalidURL if d reads
// from replicas and would coordinate issuance with o.
func refusesCoordination(d driver.Driver, o *Options) error {
	if o != nil && o.DisableCoordination {
		return nil
	}
	if _, ok := d.(driver.LeaseDriver); !ok {
		return nil // no leases: no coordination
	}
	r, ok := d.(interface{ ReplicaReads() string })
	if !ok {
		return nil
	}
	setting := r.ReplicaReads()
	if setting == "" {
		return nil
	}
	return fmt.Errorf("%w: %s reads from replicas, which may not yet have a certificate just stored on the primary, so issuance cannot be coordinated: leave it out, or set coordinate=false to run uncoordinated", ErrInvalidURL, setting)
}
