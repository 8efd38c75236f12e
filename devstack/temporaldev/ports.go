package temporaldev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	"go.temporal.io/api/workflowservice/v1"
)

// ErrPortTaken is wrapped by Start's error when a port given in Options
// cannot be bound, so that callers can report it as a configuration error.
var ErrPortTaken = errors.New("port taken")

// claim holds port when it is free, or picks a free port when port is 0.
// A taken port is an error that names the address and the part that wanted
// it, so that `onesync dev` says which flag to change.
func (p *portPicker) claim(port int, what string) (int, error) {
	if port == 0 {
		return p.pick()
	}
	addr := net.JoinHostPort(p.host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: address %s is not available (is another onesync or "+
			"temporal running?): %w", ErrPortTaken, what, addr, err)
	}
	p.hold(port, l)
	return port, nil
}

// checkFree reports an error when nothing can listen on host:port.
func checkFree(host string, port int, what string) error {
	p := newPortPicker(host)
	defer p.release()
	_, err := p.claim(port, what)
	return err
}

// The internal ports are picked below Linux's default ephemeral range
// (32768-60999). Ports the kernel hands out for port 0 come from that
// range, and so do the source ports of every outgoing connection on the
// machine, so a port picked there and bound a moment later is often taken
// by then. Below it, only servers that chose the same number compete.
const (
	pickLow  = 20000
	pickHigh = 32767
)

// FreePorts returns n distinct ports that are free on host right now,
// picked the way Start picks its internal ports: below the ephemeral range,
// where a port is much less likely to be taken before it is bound. Tests
// use it to hand free ports to a subprocess.
func FreePorts(host string, n int) ([]int, error) {
	p := newPortPicker(host)
	defer p.release()

	out := make([]int, n)
	for i := range out {
		port, err := p.pick()
		if err != nil {
			return nil, err
		}
		out[i] = port
	}
	return out, nil
}

// portPicker hands out distinct free ports on one host. It keeps each
// picked port bound until release, so that it never hands out one port
// twice; the server binds them right after release.
type portPicker struct {
	host  string
	held  []net.Listener
	taken map[int]bool
}

func newPortPicker(host string) *portPicker {
	return &portPicker{host: host, taken: map[int]bool{}}
}

// pick returns a free port, trying random ports of the pick range first
// and falling back to one the kernel chooses.
func (p *portPicker) pick() (int, error) {
	for range 50 {
		port := pickLow + rand.IntN(pickHigh-pickLow+1)
		if p.taken[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(p.host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		p.hold(port, l)
		return port, nil
	}

	l, err := net.Listen("tcp", net.JoinHostPort(p.host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", p.host, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	p.hold(port, l)
	return port, nil
}

func (p *portPicker) hold(port int, l net.Listener) {
	p.taken[port] = true
	p.held = append(p.held, l)
}

// release closes the held listeners so that the server can bind the ports.
func (p *portPicker) release() {
	for _, l := range p.held {
		_ = l.Close()
	}
	p.held = nil
}

func describeNamespace(name string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: name}
}
