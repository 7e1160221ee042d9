#!/bin/sh
# After removing or upgrading the sallyport package (.deb: "remove", "purge",
# "upgrade", …; .rpm: 0 = erase, 1 = upgrade): systemd forgets the removed
# units (or reads the upgraded ones). On removal the updater's saved previous
# binary goes too; the state directory and the user stay (docs/install.md).
set -e

case "$1" in
remove | purge | 0)
	rm -f /opt/sallyport/bin/sallyport.previous
	rmdir /opt/sallyport/bin /opt/sallyport 2>/dev/null || true
	;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
