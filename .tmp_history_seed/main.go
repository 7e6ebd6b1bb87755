// Temporary runner (helper session); removed once keyline loadtest metrics exists.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/store"
)

func main() {
	ctx := context.Background()
	url := "postgres://postgres@127.0.0.1:5432/keyline_history?sslmode=disable"
	key, _ := secret.ParseKey(os.Getenv("KEYLINE_SECRET_KEY"))
	sealer, err := secret.NewSealer(key)
	if err != nil { panic(err) }
	st, err := store.OpenPostgres(ctx, url, sealer, nil)
	if err != nil { panic(err) }
	if err := st.Migrate(ctx); err != nil { panic(err) }
	db, err := sql.Open("pgx", url)
	if err != nil { panic(err) }
	res, err := loadtest.SeedHistory(ctx, db, loadtest.HistoryOptions{Tenants: st, AppKey: "dev.keyline.jira",
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil { panic(err) }
	fmt.Printf("%+v\n", res)
}
