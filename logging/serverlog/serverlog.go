// Package serverlog adapts OneSync's zap logger to the logger interface of
// the embedded Temporal server, so that the server's lines come out in the
// same format as OneSync's own. It lives apart from package logging so
// that `worker` and `api` code need not compile the server's packages.
package serverlog

import (
	"strings"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Logger writes the Temporal server's tagged lines through a zap logger.
type Logger struct {
	z *zap.Logger
}

// The adapter offers the optional interfaces the server looks for.
var (
	_ log.Logger     = (*Logger)(nil)
	_ log.WithLogger = (*Logger)(nil)
	_ log.SkipLogger = (*Logger)(nil)
)

// New returns the server adapter over z, named "temporal" so that server
// lines can be told from OneSync's. Stack traces are kept for panics only:
// the server logs many errors it recovers from, and a trace under each
// would bury the lines that matter.
func New(z *zap.Logger) *Logger {
	return &Logger{z: z.Named("temporal").WithOptions(
		zap.AddCallerSkip(1), zap.AddStacktrace(zapcore.DPanicLevel))}
}

// Debug logs at debug level.
func (l *Logger) Debug(msg string, tags ...tag.Tag) { l.z.Debug(msg, fields(tags)...) }

// Info logs at info level.
func (l *Logger) Info(msg string, tags ...tag.Tag) { l.z.Info(msg, fields(tags)...) }

// Warn logs at warn level, or at debug level for the warnings listed in
// expectedWarnings.
func (l *Logger) Warn(msg string, tags ...tag.Tag) {
	for _, prefix := range expectedWarnings {
		if strings.HasPrefix(msg, prefix) {
			l.z.Debug(msg, fields(tags)...)
			return
		}
	}
	l.z.Warn(msg, fields(tags)...)
}

// expectedWarnings begin warnings the embedded server gives in normal use
// of `onesync dev`, where they tell an operator nothing to act on: it runs
// without Nexus, and the Temporal UI asks for history pages larger than
// the server's default threshold. They are kept, at debug level.
var expectedWarnings = []string{
	"HTTP API port has not been set",
	"GetHistory page size is larger than threshold",
}

// Error logs at error level.
func (l *Logger) Error(msg string, tags ...tag.Tag) { l.z.Error(msg, fields(tags)...) }

// DPanic logs at dpanic level: it panics only in a development logger.
func (l *Logger) DPanic(msg string, tags ...tag.Tag) { l.z.DPanic(msg, fields(tags)...) }

// Panic logs and then panics, as the server expects.
func (l *Logger) Panic(msg string, tags ...tag.Tag) { l.z.Panic(msg, fields(tags)...) }

// Fatal logs and then exits the process, as the server expects.
func (l *Logger) Fatal(msg string, tags ...tag.Tag) { l.z.Fatal(msg, fields(tags)...) }

// With returns a logger that adds tags to every line; l is unchanged.
func (l *Logger) With(tags ...tag.Tag) log.Logger {
	return &Logger{z: l.z.With(fields(tags)...)}
}

// Skip returns a logger that skips extraSkip more frames when it names the
// caller; l is unchanged.
func (l *Logger) Skip(extraSkip int) log.Logger {
	return &Logger{z: l.z.WithOptions(zap.AddCallerSkip(extraSkip))}
}

// fields turns server tags into zap fields, using the tag's own zap field
// when it carries one.
func fields(tags []tag.Tag) []zap.Field {
	if len(tags) == 0 {
		return nil
	}
	out := make([]zap.Field, len(tags))
	for i, t := range tags {
		if zt, ok := t.(tag.ZapTag); ok {
			out[i] = zt.Field()
			continue
		}
		out[i] = zap.Any(t.Key(), t.Value())
	}
	return out
}
