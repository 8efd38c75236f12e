// Package pbx connects OneSync to the PBX: a directory that lists an
// organisation's extensions and a publisher that sets one extension's line
// state. Implementations live beside this file (REST) and in pbx/sip.
package pbx

import (
	"context"
	"errors"
	"time"

	"github.com/setera/onesync/presence"
)

// Extension is one PBX extension of an organisation.
type Extension struct {
	Number string `json:"number"`
	Email  string `json:"email,omitempty"`
	Name   string `json:"name,omitempty"`
	Phone  string `json:"phone,omitempty"`
}

// Update sets one extension's line state.
//
// Seq grows with every change OneSync makes to that extension; the PBX must
// ignore an update whose Seq is not greater than the last one it applied.
// IdempotencyKey is the same for a retry of the same change.
type Update struct {
	Org            string             `json:"org"`
	Extension      string             `json:"extension"`
	State          presence.LineState `json:"state"`
	Reason         string             `json:"reason,omitempty"`
	Seq            int64              `json:"seq"`
	IdempotencyKey string             `json:"idempotencyKey"`
	ObservedAt     time.Time          `json:"observedAt"`
}

// Directory lists an organisation's extensions.
type Directory interface {
	Extensions(ctx context.Context, org string) ([]Extension, error)
}

// Publisher sets one extension's line state. Publishing the same update
// twice has the effect of publishing it once.
type Publisher interface {
	Publish(ctx context.Context, u Update) error
}

// Connector is a PBX that has both parts.
type Connector interface {
	Directory
	Publisher
}

// ErrExtensionNotFound means the PBX does not know the extension: its link
// is broken, and the other extensions keep syncing.
var ErrExtensionNotFound = errors.New("pbx: extension not found")

// ErrStale means the PBX already holds a newer update for the extension.
var ErrStale = errors.New("pbx: a newer update was already applied")
