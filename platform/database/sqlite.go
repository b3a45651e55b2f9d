package database

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// sqlitePragmas run on every new SQLite connection:
//   - journal_mode(WAL): readers do not block the writer nor it them;
//   - busy_timeout: a writer waits up to 10 s for the lock instead of failing at once;
//   - foreign_keys(1): SQLite enforces foreign keys only when asked, per connection.
var sqlitePragmas = []struct{ name, arg string }{
	{"journal_mode", "WAL"},
	{"busy_timeout", "10000"},
	{"foreign_keys", "1"},
}

// sqliteDSN adds the connection settings the stores rely on to a SQLite DSN: sqlitePragmas,
// and _txlock=immediate, with which a transaction takes the write lock when it begins. Two
// transactions that read and then write then queue instead of both reading and deadlocking
// on the upgrade to a write lock: SQLite's answer to SELECT ... FOR UPDATE.
//
// The DSN may carry options of its own but not these: a DSN that sets one of them is
// refused rather than silently overridden or obeyed, since a store is only correct with
// them. So is _time_format, with which the driver ignores _txlock (go-sqlite v1.21) and
// the stores' times would be written in another format.
func sqliteDSN(dsn string) (string, error) {
	path, query, _ := strings.Cut(dsn, "?")
	if path == "" {
		return "", errors.New("database: the SQLite DSN has no file path")
	}
	// ":memory:" and "file:" URIs name no folder to create.
	if path != ":memory:" && !strings.HasPrefix(path, "file:") {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return "", fmt.Errorf("database: creating the SQLite database's folder: %w", err)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("database: the SQLite DSN's options: %w", err)
	}
	for _, o := range []struct{ name, why string }{
		{"_txlock", "Open makes transactions immediate"},
		{"_time_format", "the driver would then ignore _txlock"},
	} {
		if q.Has(o.name) {
			return "", fmt.Errorf("database: the SQLite DSN may not set %s: %s", o.name, o.why)
		}
	}
	for _, p := range q["_pragma"] {
		name := pragmaName(p)
		for _, own := range sqlitePragmas {
			if name == own.name {
				return "", fmt.Errorf("database: the SQLite DSN may not set the %s pragma: Open sets it to %s", name, own.arg)
			}
		}
	}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p.name+"("+p.arg+")")
	}
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode(), nil
}

// pragmaName returns the name a _pragma value sets, in lower case and without its schema:
// "journal_mode" for "main.Journal_Mode = DELETE" as for "journal_mode(DELETE)".
func pragmaName(pragma string) string {
	name, _, _ := strings.Cut(pragma, "(")
	name, _, _ = strings.Cut(name, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}
