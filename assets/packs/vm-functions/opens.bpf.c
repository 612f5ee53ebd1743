// SPDX-License-Identifier: GPL-2.0 OR MIT
// The pack `cargo xtask test-vm` loads on Debian's kernels (which have
// kprobes and fentry): calls of do_sys_openat2 per process, counted by an
// fentry program or by a kprobe program, whichever the manifest's probe
// attaches.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 target_tgid = 0;

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
         __type(key, __u32); __type(value, __u64); } calls SEC(".maps");

static __always_inline int count(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_tgid && tgid != target_tgid)
		return 0;
	__u64 one = 1, *n = bpf_map_lookup_elem(&calls, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &tgid, &one, BPF_NOEXIST);
	return 0;
}

SEC("fentry/do_sys_openat2")
int on_open_fentry(void *ctx) { return count(); }

SEC("kprobe/do_sys_openat2")
int on_open_kprobe(void *ctx) { return count(); }

char LICENSE[] SEC("license") = "GPL";
