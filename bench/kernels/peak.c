// peak: the fp32 FMA throughput of this machine on 1 and 2 threads, with no
// memory traffic: 12 independent accumulators per thread, each thread pinned
// to its own CPU. Prints one line per width and thread count:
//
//	peak <isa> <threads> <GFLOP/s>
//
// The best of several runs is kept, so that load from other processes lowers
// it as little as it can. Build: cc -O2 -pthread peak.c
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ITERS 20000000L // 12 FMAs each: ~60 ms at 4 GHz

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

// Twelve vfmadd231ps into z0..z11 from z14·z15 per iteration.
#define FMA12(w)                                                                 \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "0\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "1\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "2\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "3\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "4\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "5\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "6\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "7\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "8\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "9\n\t"                             \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "10\n\t"                            \
	"vfmadd231ps %%" w "14, %%" w "15, %%" w "11\n\t"
#define CLOBBERS                                                                 \
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",      \
	    "xmm9", "xmm10", "xmm11", "xmm14", "xmm15", "cc"

__attribute__((target("avx512f"))) static void loop512(long n) {
	__asm__ volatile("vxorps %%xmm14, %%xmm14, %%xmm14\n\t"
	                 "vxorps %%xmm15, %%xmm15, %%xmm15\n\t"
	                 "1:\n\t" FMA12("zmm") "dec %0\n\tjnz 1b\n\tvzeroupper"
	                 : "+r"(n)::CLOBBERS);
}

__attribute__((target("avx2,fma"))) static void loop256(long n) {
	__asm__ volatile("vxorps %%xmm14, %%xmm14, %%xmm14\n\t"
	                 "vxorps %%xmm15, %%xmm15, %%xmm15\n\t"
	                 "1:\n\t" FMA12("ymm") "dec %0\n\tjnz 1b\n\tvzeroupper"
	                 : "+r"(n)::CLOBBERS);
}

struct job {
	int wide, cpu;
	pthread_barrier_t *start;
};

static void *worker(void *p) {
	struct job *j = p;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(j->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	pthread_barrier_wait(j->start);
	if (j->wide)
		loop512(ITERS);
	else
		loop256(ITERS);
	return NULL;
}

static double measure(int wide, int threads) {
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double best = 0;
	for (int rep = 0; rep < 7; rep++) {
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, threads + 1);
		pthread_t th[2];
		struct job jobs[2];
		for (int t = 0; t < threads; t++) {
			jobs[t] = (struct job){wide, t % ncpu, &start};
			pthread_create(&th[t], NULL, worker, &jobs[t]);
		}
		pthread_barrier_wait(&start);
		double t0 = now();
		for (int t = 0; t < threads; t++)
			pthread_join(th[t], NULL);
		double sec = now() - t0;
		pthread_barrier_destroy(&start);
		double flop = (double)threads * ITERS * 12 * (wide ? 32 : 16);
		if (flop / sec / 1e9 > best)
			best = flop / sec / 1e9;
	}
	return best;
}

int main(void) {
	__builtin_cpu_init();
	int wide = __builtin_cpu_supports("avx512f");
	if (!wide && !__builtin_cpu_supports("avx2")) {
		fprintf(stderr, "peak: no AVX2 or AVX-512 on this CPU\n");
		return 1;
	}
	for (int threads = 1; threads <= 2; threads++)
		printf("peak %s %d %.1f\n", wide ? "avx512" : "avx2", threads, measure(wide, threads));
	return 0;
}
