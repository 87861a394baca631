# cisaudit --reboot-proof (cisaudit/host/reboot.py): reboot this host once. Values: RB_BEFORE (the
# boot id the run recorded), RB_HOW (systemctl: `systemctl reboot`; exit194: exit 194, which makes
# the SSM agent reboot the instance and run this script again after the boot).
# Idempotent: a boot id other than RB_BEFORE means the boot already happened (the SSM agent's
# re-run after the reboot), and the script only says so.
# shellcheck shell=sh
rb_now=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
if [ -z "$rb_now" ]; then
	echo "cisaudit-reboot: no boot id (/proc/sys/kernel/random/boot_id)" >&2
	exit 2
fi
if [ "$rb_now" != "$RB_BEFORE" ]; then
	echo "cisaudit-reboot: booted $rb_now"
	exit 0
fi
case $RB_HOW in
systemctl)
	echo "cisaudit-reboot: rebooting $rb_now"
	systemctl reboot
	;;
exit194)
	echo "cisaudit-reboot: rebooting $rb_now (exit 194)"
	exit 194
	;;
*)
	echo "cisaudit-reboot: unknown way to reboot: $RB_HOW" >&2
	exit 2
	;;
esac
