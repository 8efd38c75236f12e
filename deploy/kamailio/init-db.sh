#!/bin/sh
# init-db.sh creates the SQLite database that kamailio.cfg needs: the
# version table and the presence tables, and with --auth the subscriber
# table for the WITH_AUTH variant. It uses the schema files that Debian's
# kamailio-sqlite-modules package installs, so the tables always match the
# installed Kamailio.
#
#   init-db.sh /var/lib/kamailio/presence.sqlite [--auth]
#
# Add a publisher account for WITH_AUTH (realm = the SIP domain):
#   sqlite3 presence.sqlite "INSERT INTO subscriber (username, domain, password)
#     VALUES ('onesync', 'pbx.example', 'a-long-random-password')"
set -eu

db=${1:?usage: init-db.sh DBFILE [--auth]}
schema=${KAMAILIO_SCHEMA_DIR:-/usr/share/kamailio/db_sqlite}

if [ -e "$db" ]; then
	echo "init-db.sh: $db exists; remove it first to start fresh" >&2
	exit 1
fi
for f in standard presence; do
	[ -r "$schema/$f-create.sql" ] || {
		echo "init-db.sh: $schema/$f-create.sql missing (kamailio-sqlite-modules?)" >&2
		exit 1
	}
done

# Write-ahead logging lets Kamailio's processes read while one of them
# writes; in the default rollback mode a NOTIFY lookup in one process made
# a PUBLISH in another fail with "database is locked" (seen in the tests).
# The mode is stored in the file, so kamailio.cfg needs no setting for it.
sqlite3 "$db" "PRAGMA journal_mode=WAL;" >/dev/null
sqlite3 "$db" < "$schema/standard-create.sql"
sqlite3 "$db" < "$schema/presence-create.sql"
if [ "${2:-}" = "--auth" ]; then
	sqlite3 "$db" < "$schema/auth_db-create.sql"
fi
