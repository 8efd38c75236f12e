package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz answers as long as the process serves HTTP.
func healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 only when Temporal and the store both answer, so that
// a load balancer sends no traffic to a replica that cannot serve it.
func readyz(d Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
		defer cancel()

		checks := gin.H{}
		ready := true
		if d.Temporal == nil {
			checks["temporal"] = "not configured"
			ready = false
		} else if _, err := d.Temporal.CheckHealth(ctx, nil); err != nil {
			checks["temporal"] = err.Error()
			ready = false
		} else {
			checks["temporal"] = "ok"
		}
		if d.Store == nil {
			checks["store"] = "not configured"
			ready = false
		} else if err := d.Store.Ping(ctx); err != nil {
			checks["store"] = err.Error()
			ready = false
		} else {
			checks["store"] = "ok"
		}

		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		c.JSON(status, gin.H{"ready": ready, "checks": checks})
	}
}
