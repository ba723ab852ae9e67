// sgemm: OpenBLAS's single-precision GEMM on the shapes of Go's Matrix.MulT,
// out[m×n] = x[m×k]·wᵀ with w stored [n×k] row-major (a PyTorch Linear
// weight), on 1 and 2 threads. Arguments are shapes "m,k,n"; prints
//
//	corename <name>
//	oblas <m> <k> <n> <threads> <GFLOP/s>
//
// Each figure is the best of several windows of at least 20 ms, so that load
// from other processes lowers it as little as it can. Each shape is checked
// against a double-precision product on a few outputs first.
//
// Build: cc -O2 sgemm.c -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *randoms(size_t n, unsigned *seed) {
	float *p = malloc(n * sizeof *p);
	if (!p) {
		fprintf(stderr, "sgemm: out of memory for %zu floats\n", n);
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1664525u + 1013904223u;
		p[i] = (float)((*seed >> 8) * (1.0 / 16777216.0) - 0.5);
	}
	return p;
}

static void product(int m, int k, int n, const float *x, const float *w, float *out) {
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, out, n);
}

// best returns the fastest seconds per call over trials windows.
static double best(int m, int k, int n, const float *x, const float *w, float *out) {
	double fastest = 1e30;
	for (int trial = 0; trial < 8; trial++) {
		long calls = 0;
		double t0 = now(), el;
		do {
			product(m, k, n, x, w, out);
			calls++;
		} while ((el = now() - t0) < 0.02);
		if (el / calls < fastest)
			fastest = el / calls;
	}
	return fastest;
}

int main(int argc, char **argv) {
	printf("corename %s\n", openblas_get_corename());
	unsigned seed = 1;
	for (int a = 1; a < argc; a++) {
		int m, k, n;
		if (sscanf(argv[a], "%d,%d,%d", &m, &k, &n) != 3 || m <= 0 || k <= 0 || n <= 0) {
			fprintf(stderr, "sgemm: bad shape %s, want m,k,n\n", argv[a]);
			return 2;
		}
		float *x = randoms((size_t)m * k, &seed), *w = randoms((size_t)n * k, &seed);
		float *out = randoms((size_t)m * n, &seed);
		for (int threads = 1; threads <= 2; threads++) {
			openblas_set_num_threads(threads);
			product(m, k, n, x, w, out);
			for (int s = 0; s < 16; s++) {
				int i = (int)((long)s * 7919 % m), j = (int)((long)s * 104729 % n);
				double want = 0;
				for (int p = 0; p < k; p++)
					want += (double)x[(size_t)i * k + p] * w[(size_t)j * k + p];
				if (fabs(out[(size_t)i * n + j] - want) > 1e-3 * (1 + sqrt((double)k))) {
					fprintf(stderr, "sgemm: wrong result at %dx%dx%d [%d,%d]: %g, want %g\n", m, k, n,
					        i, j, out[(size_t)i * n + j], want);
					return 1;
				}
			}
			double sec = best(m, k, n, x, w, out);
			printf("oblas %d %d %d %d %.2f\n", m, k, n, threads, 2.0 * m * k * n / sec / 1e9);
			fflush(stdout);
		}
		free(x);
		free(w);
		free(out);
	}
	return 0;
}
