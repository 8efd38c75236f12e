// Package api serves OneSync's HTTP side with gin: the customer portal, the
// staff pages, the consent callback, the JSON API and the health probes.
// It talks to Temporal only through the client (start, signal, query) and
// never runs workflow or activity code itself.
package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

// Pinger reports whether a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is what the HTTP side needs from the process that serves it.
type Deps struct {
	Logger   *zap.Logger
	Temporal client.Client
	Store    Pinger // replaced by the store's concrete type once it exists
}

// New returns the handler for every OneSync page and endpoint.
func New(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())

	r.GET("/healthz", healthz)
	r.GET("/readyz", readyz(d))
	return r
}
