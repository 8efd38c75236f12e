package temporaldev

import (
	"fmt"
	"net"
	"strconv"

	"go.temporal.io/api/workflowservice/v1"
)

// pickPort returns port when it is free, or a free port when port is 0.
// A taken port is an error that names the address and the part that wanted
// it, so that `onesync dev` says which flag to change.
func pickPort(host string, port int, what string) (int, error) {
	if port == 0 {
		return freePort(host)
	}
	if err := checkFree(host, port, what); err != nil {
		return 0, err
	}
	return port, nil
}

// checkFree reports an error when nothing can listen on host:port.
func checkFree(host string, port int, what string) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: address %s is not available (is another onesync or "+
			"temporal running?): %w", what, addr, err)
	}
	return l.Close()
}

// freePort asks the kernel for a free port on host. Another process may
// take it before it is used; on loopback in a dev or test run that risk is
// accepted.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func describeNamespace(name string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: name}
}
