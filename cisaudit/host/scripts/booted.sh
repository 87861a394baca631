# cisaudit --reboot-proof (cisaudit/host/reboot.py): print this boot's id. Value: RB_BEFORE (the
# boot id before the reboot). In a new boot, first wait until systemd has started what the boot
# starts (is-system-running --wait: running or degraded), so that the audit after the boot sees
# the host as it settles, not half-booted (a socket its daemon has not made yet).
# shellcheck shell=sh
rb_now=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
if [ -n "$rb_now" ] && [ "$rb_now" != "$RB_BEFORE" ] && [ -d /run/systemd/system ]; then
	systemctl is-system-running --wait >/dev/null 2>&1
fi
printf '%s\n' "$rb_now"
