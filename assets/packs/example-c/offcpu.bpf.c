// SPDX-License-Identifier: GPL-2.0 OR MIT
// Microscope's example stacks pack in C: where threads wait. At each
// context switch, a thread that blocks (sleeps, waits for I/O or a lock)
// has its kernel and user stacks taken; when it runs again, the time it
// spent off the CPU is added to the count of that pair of stacks.
//
// Build (headers from the linux-libc-dev and libbpf-dev packages):
//   clang-22 -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu \
//       -c offcpu.bpf.c -o offcpu.bpf.o
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// Set by the helper before loading ([probe.knobs] in offcpu.toml): only
// count this process (0 = every process).
const volatile __u32 target_tgid = 0;

// The record of sched:sched_switch, as
// /sys/kernel/tracing/events/sched/sched_switch/format lays it out.
struct sched_switch_ctx {
	__u64 common;
	char prev_comm[16];
	__s32 prev_pid;
	__s32 prev_prio;
	__s64 prev_state;
	char next_comm[16];
	__s32 next_pid;
	__s32 next_prio;
};

// One count per thread and pair of stacks (the manifest's `key`).
struct stack_key {
	__u32 tgid;
	__u32 tid;
	__s32 user_stack;   // stack id in `stacks`, or a negative error
	__s32 kernel_stack;
	char comm[16];
};

struct blocked {
	__u64 since_ns;
	struct stack_key key;
};

struct off_cpu {
	__u64 blocks;       // times the thread left the CPU with these stacks
	__u64 total_ns;     // time it spent off the CPU then
};

#define MAX_DEPTH 127       // the kernel's default perf_event_max_stack

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stack_key);
	__type(value, struct off_cpu);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct blocked);
} start SEC(".maps");

// The task states that mean "blocked" (S, D, T, t, X, Z, P, I); a task
// preempted while runnable reports 0 or TASK_REPORT_MAX (0x100).
#define BLOCKED_STATES 0xff

SEC("tracepoint/sched/sched_switch")
int offcpu_switch(struct sched_switch_ctx *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;

	// The thread leaving the CPU is the current one: its stacks are here.
	if (tid != 0 && (!target_tgid || tgid == target_tgid) &&
	    (ctx->prev_state & BLOCKED_STATES)) {
		struct blocked b = {};
		b.since_ns = now;
		b.key.tgid = tgid;
		b.key.tid = tid;
		b.key.user_stack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
		b.key.kernel_stack = bpf_get_stackid(ctx, &stacks, 0);
		bpf_get_current_comm(b.key.comm, sizeof(b.key.comm));
		bpf_map_update_elem(&start, &tid, &b, BPF_ANY);
	}

	// The thread coming back: add the time it was away.
	__u32 next = ctx->next_pid;
	struct blocked *b = bpf_map_lookup_elem(&start, &next);
	if (!b)
		return 0;
	__u64 delta = now - b->since_ns;
	struct stack_key key = b->key;
	bpf_map_delete_elem(&start, &next);

	struct off_cpu zero = {}, *total = bpf_map_lookup_elem(&counts, &key);
	if (!total) {
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		total = bpf_map_lookup_elem(&counts, &key);
	}
	if (total) {
		__sync_fetch_and_add(&total->blocks, 1);
		__sync_fetch_and_add(&total->total_ns, delta);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
