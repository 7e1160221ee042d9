#!/bin/sh
# After installing or upgrading the sallyport package (.deb: "configure";
# .rpm: 1 = install, 2 = upgrade): the connector's system user and state
# directory, and systemd told about the units. It never starts a connector
# that is not registered; after an upgrade it restarts the units that run.
set -e

case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;;
esac

user=sallyport
dir=/var/lib/sallyport/connector

if ! getent passwd "$user" >/dev/null 2>&1; then
	if getent group "$user" >/dev/null 2>&1; then
		group_opt="--gid $user"
	else
		group_opt="--user-group"
	fi
	# shellcheck disable=SC2086 # group_opt is two words or one
	useradd --system --home-dir "$dir" --no-create-home --shell /usr/sbin/nologin \
		--comment "Sallyport connector" $group_opt "$user"
fi

if [ ! -d "$dir" ]; then
	mkdir -p -m 0755 /var/lib/sallyport
	mkdir -m 0700 "$dir"
	chown "$user:$(id -gn "$user")" "$dir"
fi

# The updater's own directory: root only (it keeps its release key pin and
# journal there, out of reach of the connector's user); the updater unit's
# ReadWritePaths= needs it to exist.
mkdir -p -m 0700 "$dir-updater"
chown root:root "$dir-updater"
chmod 0700 "$dir-updater"

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade: running units move to the new binary (a stopped one stays stopped).
	systemctl try-restart --no-block sallyport-connector.service sallyport-updater.service >/dev/null 2>&1 || true
fi

if [ ! -f "$dir/trust.json" ]; then
	cat <<MSG
Sallyport is installed; the connector is not registered yet, so it was not started.
Register it as the user $user, then start it:
  runuser -u $user -- sallyport connector register --dir $dir --cloud https://CLOUD ...
  systemctl enable --now sallyport-connector sallyport-updater
MSG
fi
exit 0
