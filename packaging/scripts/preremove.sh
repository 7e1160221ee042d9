#!/bin/sh
# Before removing the sallyport package (.deb: "remove"; .rpm: 0 = erase, not
# 1 = upgrade): stop and disable the units. The state directory (the
# connector's registration) and the user stay; docs/install.md says how to
# remove them.
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl disable --now sallyport-connector.service sallyport-updater.service >/dev/null 2>&1 || true
else
	systemctl disable sallyport-connector.service sallyport-updater.service >/dev/null 2>&1 || true
fi
exit 0
