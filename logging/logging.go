// Package logging builds OneSync's one root zap logger and bridges it into
// the Temporal SDK, so that OneSync's own lines and the SDK's lines come out
// in one format. It never logs on its own and holds no global logger.
package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The output modes New accepts.
const (
	ModeConsole = "console" // human-readable lines, for `onesync dev`
	ModeJSON    = "json"    // one JSON object a line, for `worker` and `api`
)

// Levels lists the log levels New accepts, lowest first.
var Levels = []string{"debug", "info", "warn", "error"}

// New returns a logger that writes to standard error in the given mode
// (console or json) at the given level (debug, info, warn or error).
func New(mode, level string) (*zap.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}

	enc := zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		NameKey:        "logger",
		CallerKey:      "caller",
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.ISO8601TimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}

	var encoder zapcore.Encoder
	// A person reads the console: a stack trace under every error line
	// (many of them expected refusals the SDK logs as errors) buries the
	// message. JSON lines keep them for the log store.
	stackFrom := zapcore.ErrorLevel
	switch mode {
	case ModeConsole:
		stackFrom = zapcore.DPanicLevel
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		encoder = zapcore.NewConsoleEncoder(enc)
	case ModeJSON:
		encoder = zapcore.NewJSONEncoder(enc)
	default:
		return nil, fmt.Errorf("unknown log format %q (want %s or %s)", mode, ModeConsole, ModeJSON)
	}

	core := zapcore.NewCore(encoder, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(stackFrom)), nil
}

// ParseLevel turns a level name into a zap level, with an error that lists
// the accepted names, so that a typo in --log-level is caught at start.
func ParseLevel(level string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return zapcore.InfoLevel, fmt.Errorf("unknown log level %q (want one of %s)",
		level, strings.Join(Levels, ", "))
}
