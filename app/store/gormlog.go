package store

import (
	"context"
	"log/slog"
	"time"

	gormlogger "gorm.io/gorm/logger"
)

// slowQuery is the duration above which a statement is logged as a warning.
const slowQuery = 500 * time.Millisecond

// gormLogger reports only slow statements, without their arguments. Errors
// are not logged here because every store method returns them wrapped and the
// caller decides; gorm's own loggers would log them a second time and, with
// arguments, could write tenant data into the log.
type gormLogger struct {
	log *slog.Logger
}

func newGormLogger(l *slog.Logger) gormlogger.Interface { return gormLogger{log: l} }

func (l gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+msg, "args", len(args))
}

func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "gorm: "+msg, "args", len(args))
}

func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, "gorm: "+msg, "args", len(args))
}

func (l gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if d := time.Since(begin); d > slowQuery {
		sql, rows := fc()
		l.log.WarnContext(ctx, "store: slow query", "duration", d, "sql", sql, "rows", rows)
	}
}

// ParamsFilter drops statement arguments before gorm renders SQL for Trace,
// so a slow-query line shows placeholders, never values.
func (l gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
