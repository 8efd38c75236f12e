package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/setera/onesync/devstack"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/setera/onesync/api"
	"github.com/setera/onesync/store"
)

// Password bounds, the same the log-in pages enforce.
const (
	minStaffPassword = 12
	maxStaffPassword = 72 // bcrypt ignores bytes after the 72nd
)

// runStaffAdd creates a staff account. The password is read from standard
// input with --password-stdin; otherwise a random one is generated and
// printed once on standard output, never in a log line.
func runStaffAdd(ctx context.Context, env *runEnv, args []string) error {
	var cfg staffAddConfig
	_, logger, err := setUp(env, "staff add",
		"Creates a Setera staff account that can log in to the staff pages.", &cfg, args)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	password, generated, err := staffPassword(env, cfg.PasswordStdin)
	if err != nil {
		return err
	}
	hash, err := api.HashPassword(password)
	if err != nil {
		return err
	}
	id, err := randomID()
	if err != nil {
		return err
	}

	// A mistyped SQLite path would otherwise create an empty database and
	// an account that can never log in where the portal looks.
	if path, ok := strings.CutPrefix(cfg.Store, "sqlite:"); ok {
		if _, err := os.Stat(path); err != nil {
			return configErrorf("--store %s: no OneSync database there (onesync dev keeps "+
				"it at .onesync/%s; start onesync once to create it)", cfg.Store,
				devstack.StoreFile)
		}
	}
	db, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("open store %s: %w", redactDSN(cfg.Store), err)
	}
	defer db.Close()

	err = db.CreateStaff(ctx, store.Staff{
		ID:           id,
		Email:        cfg.Email,
		Name:         cfg.Name,
		PasswordHash: hash,
		CreatedAt:    time.Now().UTC(),
	})
	if errors.Is(err, store.ErrDuplicate) {
		return configErrorf("a staff account with email %s exists already", cfg.Email)
	}
	if err != nil {
		return err
	}

	logger.Info("staff account created") // no email at info level: it is personal data
	fmt.Fprintf(env.stdout, "Created staff account %s (id %s).\n", cfg.Email, id)
	if generated {
		fmt.Fprintf(env.stdout, "Password (shown once, store it now): %s\n", password)
	}
	return nil
}

// staffPassword reads the password from stdin or generates one.
func staffPassword(env *runEnv, fromStdin bool) (pw string, generated bool, err error) {
	if !fromStdin {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return "", false, fmt.Errorf("generate password: %w", err)
		}
		return base64.RawURLEncoding.EncodeToString(b), true, nil
	}

	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", false, configErrorf("--password-stdin: no password on standard input")
	}
	pw = strings.TrimRight(line, "\r\n")
	switch {
	case utf8.RuneCountInString(pw) < minStaffPassword:
		return "", false, configErrorf("the password needs at least %d characters", minStaffPassword)
	case len(pw) > maxStaffPassword:
		return "", false, configErrorf("the password may have at most %d bytes", maxStaffPassword)
	}
	return pw, false, nil
}

func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
