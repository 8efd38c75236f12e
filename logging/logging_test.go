package logging_test

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/setera/onesync/logging"
)

func TestNewAcceptsModesAndLevels(t *testing.T) {
	for _, mode := range []string{logging.ModeConsole, logging.ModeJSON} {
		for _, level := range logging.Levels {
			l, err := logging.New(mode, level)
			if err != nil {
				t.Errorf("New(%q, %q): %v", mode, level, err)
				continue
			}
			want, _ := logging.ParseLevel(level)
			if !l.Core().Enabled(want) || (want > zapcore.DebugLevel && l.Core().Enabled(want-1)) {
				t.Errorf("New(%q, %q) does not log exactly from %s up", mode, level, want)
			}
		}
	}
	if _, err := logging.New("xml", "info"); err == nil {
		t.Error("New accepted format xml")
	}
	if _, err := logging.New("json", "loud"); err == nil {
		t.Error("New accepted level loud")
	}
}

func TestSDKLoggerTurnsKeyValuesIntoFields(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := logging.NewSDKLogger(zap.New(core))

	l.With("Namespace", "default").Warn("Failed to poll", "TaskQueue", "onesync", "Attempt", 3,
		"Error", errors.New("boom"), "dangling")

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Level != zapcore.WarnLevel || e.Message != "Failed to poll" {
		t.Fatalf("entry %s %q, want warn \"Failed to poll\"", e.Level, e.Message)
	}
	got := e.ContextMap()
	want := map[string]any{"Namespace": "default", "TaskQueue": "onesync", "Attempt": int64(3),
		"!BADKEY": "dangling"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, got[k], v)
		}
	}
	if got["Error"] == nil {
		t.Error("the error value was dropped")
	}
}
