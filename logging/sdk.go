package logging

import (
	"fmt"

	sdklog "go.temporal.io/sdk/log"
	"go.uber.org/zap"
)

// SDKLogger adapts a zap logger to the Temporal SDK's log.Logger, so that
// the client, the worker and workflow.GetLogger write through OneSync's
// root logger. The SDK passes key-value pairs; they become zap fields.
type SDKLogger struct {
	z *zap.Logger
}

// The adapter offers every optional interface the SDK looks for.
var (
	_ sdklog.Logger          = (*SDKLogger)(nil)
	_ sdklog.WithLogger      = (*SDKLogger)(nil)
	_ sdklog.WithSkipCallers = (*SDKLogger)(nil)
)

// NewSDKLogger returns the SDK adapter over z. The caller skip is set so
// that the caller field names the SDK's call site, not this adapter.
func NewSDKLogger(z *zap.Logger) *SDKLogger {
	return &SDKLogger{z: z.WithOptions(zap.AddCallerSkip(1))}
}

// Debug logs at debug level.
func (l *SDKLogger) Debug(msg string, keyvals ...any) { l.z.Debug(msg, Fields(keyvals)...) }

// Info logs at info level.
func (l *SDKLogger) Info(msg string, keyvals ...any) { l.z.Info(msg, Fields(keyvals)...) }

// Warn logs at warn level.
func (l *SDKLogger) Warn(msg string, keyvals ...any) { l.z.Warn(msg, Fields(keyvals)...) }

// Error logs at error level.
func (l *SDKLogger) Error(msg string, keyvals ...any) { l.z.Error(msg, Fields(keyvals)...) }

// With returns a logger that adds keyvals to every line; l is unchanged.
func (l *SDKLogger) With(keyvals ...any) sdklog.Logger {
	return &SDKLogger{z: l.z.With(Fields(keyvals)...)}
}

// WithCallerSkip returns a logger that skips depth more stack frames when
// it names the caller; l is unchanged.
func (l *SDKLogger) WithCallerSkip(depth int) sdklog.Logger {
	return &SDKLogger{z: l.z.WithOptions(zap.AddCallerSkip(depth))}
}

// Fields turns alternating keys and values into zap fields. A zap.Field
// passed as is stays one field; a key that is not a string is printed with
// fmt; a trailing key without a value is kept under "!BADKEY" rather than
// dropped, so that a mistake shows in the log.
func Fields(keyvals []any) []zap.Field {
	if len(keyvals) == 0 {
		return nil
	}

	fields := make([]zap.Field, 0, (len(keyvals)+1)/2)
	for i := 0; i < len(keyvals); {
		if f, ok := keyvals[i].(zap.Field); ok {
			fields = append(fields, f)
			i++
			continue
		}
		if i+1 == len(keyvals) {
			fields = append(fields, zap.Any("!BADKEY", keyvals[i]))
			break
		}
		key, ok := keyvals[i].(string)
		if !ok {
			key = fmt.Sprint(keyvals[i])
		}
		fields = append(fields, zap.Any(key, keyvals[i+1]))
		i += 2
	}
	return fields
}
