package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// listen binds addr at start, so that a taken port is a configuration
// error with the flag's name before anything else starts.
func listen(flagName, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, configErrorf("%s %s is not available (is another onesync running?): %w",
			flagName, addr, err)
	}
	return l, nil
}

// httpServer serves a handler on a bound listener until shut down.
type httpServer struct {
	srv    *http.Server
	l      net.Listener
	done   chan struct{} // closed when Serve has returned
	err    error         // what ended Serve, nil after a shutdown
	logger *zap.Logger
}

// serveHTTP starts serving h on l in the background.
func serveHTTP(l net.Listener, h http.Handler, logger *zap.Logger) *httpServer {
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          zap.NewStdLog(logger.Named("http")),
		},
		l:      l,
		done:   make(chan struct{}),
		logger: logger,
	}
	go func() {
		err := s.srv.Serve(l)
		if !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
		close(s.done)
	}()
	return s
}

// Done is closed when serving has ended; Err then says why.
func (s *httpServer) Done() <-chan struct{} { return s.done }

// Err is the error that ended serving, nil after a shutdown. It is only
// meaningful once Done is closed.
func (s *httpServer) Err() error { return s.err }

// Addr is the address the server listens on.
func (s *httpServer) Addr() string { return s.l.Addr().String() }

// Shutdown stops taking connections and waits up to timeout for open
// requests to finish, then closes the rest.
func (s *httpServer) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.logger.Warn("HTTP requests still open at the shutdown timeout; closing them",
			zap.Duration("timeout", timeout))
		_ = s.srv.Close()
	}
	<-s.done
	if s.err != nil {
		return fmt.Errorf("serve HTTP: %w", s.err)
	}
	if err != nil {
		return fmt.Errorf("drain HTTP: %w", err)
	}
	return nil
}
