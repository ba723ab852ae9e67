//go:build arm64 && !purego

#include "textflag.h"

// The NEON micro-kernels (written by hand; gen/ writes amd64's): tiles of
// 1 and 2 rows by a 32-column panel, 16 multiply-adds of four lanes a k
// step for two rows, against 8 loads of B and 2 broadcasts of A.

// func gemmneon1(k int, a *float32, lda int, b *float32, c *float32, ldc int, accum bool)
//
// C[1×32] (+)= A[1×k]·B[k×32] (see kernel): row i's 32 sums in
// V{8i}–V{8i+7}, which start as C's row when accumulating, else zero; each
// k step loads B's row (V16–V23) and broadcasts A's value of each row.
TEXT ·gemmneon1(SB), NOSPLIT, $0-49
	MOVD k+0(FP), R0
	MOVD a+8(FP), R1
	MOVD lda+16(FP), R2
	MOVD b+24(FP), R3
	MOVD c+32(FP), R4
	MOVD ldc+40(FP), R5
	LSL  $2, R2, R2
	LSL  $2, R5, R5
	ADD  R1, R2, R2 // row 1 of A
	ADD  R4, R5, R7 // row 1 of C
	MOVBU accum+48(FP), R6
	CBZ  R6, zero1
	MOVD R4, R6
	VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1   (R6), [V4.S4, V5.S4, V6.S4, V7.S4]
	B    loop1

zero1:
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16

loop1:
	VLD1.P  64(R3), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1.P  64(R3), [V20.S4, V21.S4, V22.S4, V23.S4]
	VLD1R.P 4(R1), [V24.S4]
	VFMLA   V16.S4, V24.S4, V0.S4
	VFMLA   V17.S4, V24.S4, V1.S4
	VFMLA   V18.S4, V24.S4, V2.S4
	VFMLA   V19.S4, V24.S4, V3.S4
	VFMLA   V20.S4, V24.S4, V4.S4
	VFMLA   V21.S4, V24.S4, V5.S4
	VFMLA   V22.S4, V24.S4, V6.S4
	VFMLA   V23.S4, V24.S4, V7.S4
	SUBS    $1, R0, R0
	BNE     loop1

	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R4)
	VST1   [V4.S4, V5.S4, V6.S4, V7.S4], (R4)
	RET

// func gemmneon2(k int, a *float32, lda int, b *float32, c *float32, ldc int, accum bool)
//
// C[2×32] (+)= A[2×k]·B[k×32] (see kernel): row i's 32 sums in
// V{8i}–V{8i+7}, which start as C's row when accumulating, else zero; each
// k step loads B's row (V16–V23) and broadcasts A's value of each row.
TEXT ·gemmneon2(SB), NOSPLIT, $0-49
	MOVD k+0(FP), R0
	MOVD a+8(FP), R1
	MOVD lda+16(FP), R2
	MOVD b+24(FP), R3
	MOVD c+32(FP), R4
	MOVD ldc+40(FP), R5
	LSL  $2, R2, R2
	LSL  $2, R5, R5
	ADD  R1, R2, R2 // row 1 of A
	ADD  R4, R5, R7 // row 1 of C
	MOVBU accum+48(FP), R6
	CBZ  R6, zero2
	MOVD R4, R6
	VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1   (R6), [V4.S4, V5.S4, V6.S4, V7.S4]
	MOVD R7, R6
	VLD1.P 64(R6), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1   (R6), [V12.S4, V13.S4, V14.S4, V15.S4]
	B    loop2

zero2:
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16

loop2:
	VLD1.P  64(R3), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1.P  64(R3), [V20.S4, V21.S4, V22.S4, V23.S4]
	VLD1R.P 4(R1), [V24.S4]
	VLD1R.P 4(R2), [V25.S4]
	VFMLA   V16.S4, V24.S4, V0.S4
	VFMLA   V17.S4, V24.S4, V1.S4
	VFMLA   V18.S4, V24.S4, V2.S4
	VFMLA   V19.S4, V24.S4, V3.S4
	VFMLA   V20.S4, V24.S4, V4.S4
	VFMLA   V21.S4, V24.S4, V5.S4
	VFMLA   V22.S4, V24.S4, V6.S4
	VFMLA   V23.S4, V24.S4, V7.S4
	VFMLA   V16.S4, V25.S4, V8.S4
	VFMLA   V17.S4, V25.S4, V9.S4
	VFMLA   V18.S4, V25.S4, V10.S4
	VFMLA   V19.S4, V25.S4, V11.S4
	VFMLA   V20.S4, V25.S4, V12.S4
	VFMLA   V21.S4, V25.S4, V13.S4
	VFMLA   V22.S4, V25.S4, V14.S4
	VFMLA   V23.S4, V25.S4, V15.S4
	SUBS    $1, R0, R0
	BNE     loop2

	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R4)
	VST1   [V4.S4, V5.S4, V6.S4, V7.S4], (R4)
	VST1.P [V8.S4, V9.S4, V10.S4, V11.S4], 64(R7)
	VST1   [V12.S4, V13.S4, V14.S4, V15.S4], (R7)
	RET
