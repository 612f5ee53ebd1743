// SPDX-License-Identifier: GPL-2.0 OR MIT
// Microscope's example pack in C: how long clock_nanosleep() really sleeps.
//
// Build (headers from the linux-libc-dev and libbpf-dev packages):
//   clang-22 -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu \
//       -c sleeps.bpf.c -o sleeps.bpf.o
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// Set by the helper before loading ([probe.knobs] in sleeps.toml): only
// count this process (0 = every process).
const volatile __u32 target_tgid = 0;

// The records of syscalls:sys_enter_clock_nanosleep and
// sys_exit_clock_nanosleep, as /sys/kernel/tracing/events/syscalls/*/format
// lays them out.
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

// One event per sleep (read by the manifest's field list).
struct sleep_event {
	__u64 duration_ns;
	__u32 tgid;
	__u32 tid;
	__s32 ret;
	__u32 pad;
	char comm[16];
};

struct per_process {
	__u64 calls;
	__u64 total_ns;
};

struct hist_key {
	__u32 tgid;
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct per_process);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hist_key);
	__type(value, __u64);
} hist SEC(".maps");

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	// Bounded loop: the verifier accepts it.
	for (int i = 0; i < 63 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tracepoint/syscalls/sys_enter_clock_nanosleep")
int sleep_enter(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u64 now = bpf_ktime_get_ns();

	if (target_tgid && tgid != target_tgid)
		return 0;
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_clock_nanosleep")
int sleep_exit(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u64 *started = bpf_map_lookup_elem(&start, &tid);
	if (!started)
		return 0;
	__u64 duration = bpf_ktime_get_ns() - *started;
	bpf_map_delete_elem(&start, &tid);

	struct per_process zero = {}, *total = bpf_map_lookup_elem(&totals, &tgid);
	if (!total) {
		bpf_map_update_elem(&totals, &tgid, &zero, BPF_NOEXIST);
		total = bpf_map_lookup_elem(&totals, &tgid);
	}
	if (total) {
		__sync_fetch_and_add(&total->calls, 1);
		__sync_fetch_and_add(&total->total_ns, duration);
	}

	struct hist_key key = { .tgid = tgid, .slot = log2_u64(duration / 1000) };
	__u64 one = 1, *count = bpf_map_lookup_elem(&hist, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&hist, &key, &one, BPF_NOEXIST);

	struct sleep_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->duration_ns = duration;
	e->tgid = tgid;
	e->tid = tid;
	e->ret = (__s32)ctx->ret;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
