//go:build amd64 && !purego

#include "textflag.h"

// Intel AMX, written by hand: neither the Go assembler nor avo knows the
// tile instructions, so they are spelled as their encodings (Intel SDM,
// checked against GNU as), each with its operands fixed by the macro's
// name. Tiles 0–3 hold C, tile 4 the A rows, tiles 5–7 the B blocks.

#define LDTILECFG_DI BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0x07
#define TILERELEASE BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0xc0

#define TILEZERO_T0 BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc0
#define TILEZERO_T1 BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xc8
#define TILEZERO_T2 BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd0
#define TILEZERO_T3 BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd8

// TILELOADD tmm, [base+index*1]
#define TILELOADD_T0_DI_BX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x04; BYTE $0x1f
#define TILELOADD_T1_DI_BX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x0c; BYTE $0x1f
#define TILELOADD_T2_DI_BX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x14; BYTE $0x1f
#define TILELOADD_T3_DI_BX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x1c; BYTE $0x1f
#define TILELOADD_T4_SI_DX BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x24; BYTE $0x16
#define TILELOADD_T5_R8_R9 BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x2c; BYTE $0x08
#define TILELOADD_T6_R8_R9 BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x34; BYTE $0x08
#define TILELOADD_T7_R8_R9 BYTE $0xc4; BYTE $0x82; BYTE $0x7b; BYTE $0x4b; BYTE $0x3c; BYTE $0x08

// TILESTORED [DI+BX*1], tmm
#define TILESTORED_DI_BX_T0 BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x04; BYTE $0x1f
#define TILESTORED_DI_BX_T1 BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x0c; BYTE $0x1f
#define TILESTORED_DI_BX_T2 BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x14; BYTE $0x1f
#define TILESTORED_DI_BX_T3 BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x1c; BYTE $0x1f

// TDPBF16PS tmm_c, tmm_a, tmm_b: C[16×16 fp32] += A[16×32 bf16]·B[32×16 bf16]
#define TDPBF16PS_T0_T4_T5 BYTE $0xc4; BYTE $0xe2; BYTE $0x52; BYTE $0x5c; BYTE $0xc4
#define TDPBF16PS_T1_T4_T6 BYTE $0xc4; BYTE $0xe2; BYTE $0x4a; BYTE $0x5c; BYTE $0xcc
#define TDPBF16PS_T2_T4_T7 BYTE $0xc4; BYTE $0xe2; BYTE $0x42; BYTE $0x5c; BYTE $0xd4
#define TDPBF16PS_T3_T4_T5 BYTE $0xc4; BYTE $0xe2; BYTE $0x52; BYTE $0x5c; BYTE $0xdc

// func amxTiles(cfg *byte, a *uint16, lda int, tiles int, b *uint16, kb int, groups int, bgs int, c *float32, ldc int, accum bool, last *float32, ldl int)
//
// For each of groups groups of 64 columns (B: kb·4 blocks of 1 KiB each,
// groups bgs bytes apart) and each of tiles row tiles of 16 rows (A: kb
// blocks of 16 rows × 32 values, 1 KiB each, tiles lda bytes apart),
// C[16×64] (+)= A·B over kb blocks of 32 k values, C rows ldc bytes apart; the last row tile's C at last
// instead, rows ldl bytes apart, unless last is nil.
//
// Groups outermost, so that a group's B is read from memory once and from
// L1 by every row tile.
TEXT ·amxTiles(SB), NOSPLIT, $0-104
	MOVQ cfg+0(FP), DI
	LDTILECFG_DI
	MOVQ $64, DX
	MOVQ $64, R9
	MOVQ b+32(FP), R12
	MOVQ c+64(FP), R13

group:
	MOVQ a+8(FP), R10
	MOVQ R13, R11
	MOVQ ldc+72(FP), BX
	MOVQ tiles+24(FP), CX

tile:
	CMPQ  CX, $1
	JNE   ctile
	MOVQ  last+88(FP), AX
	TESTQ AX, AX
	JZ    ctile
	MOVQ  AX, R11
	MOVQ  ldl+96(FP), BX

ctile:
	MOVBLZX accum+80(FP), AX
	TESTQ   AX, AX
	JZ      zero
	MOVQ    R11, DI
	TILELOADD_T0_DI_BX
	ADDQ    $64, DI
	TILELOADD_T1_DI_BX
	ADDQ    $64, DI
	TILELOADD_T2_DI_BX
	ADDQ    $64, DI
	TILELOADD_T3_DI_BX
	JMP     kstart

zero:
	TILEZERO_T0
	TILEZERO_T1
	TILEZERO_T2
	TILEZERO_T3

kstart:
	MOVQ R10, SI
	MOVQ R12, R8
	MOVQ kb+40(FP), AX

kloop:
	TILELOADD_T4_SI_DX
	TILELOADD_T5_R8_R9
	TDPBF16PS_T0_T4_T5
	ADDQ $1024, R8
	TILELOADD_T6_R8_R9
	TDPBF16PS_T1_T4_T6
	ADDQ $1024, R8
	TILELOADD_T7_R8_R9
	TDPBF16PS_T2_T4_T7
	ADDQ $1024, R8
	TILELOADD_T5_R8_R9
	TDPBF16PS_T3_T4_T5
	ADDQ $1024, R8
	ADDQ $1024, SI
	DECQ AX
	JNZ  kloop

	MOVQ R11, DI
	TILESTORED_DI_BX_T0
	ADDQ $64, DI
	TILESTORED_DI_BX_T1
	ADDQ $64, DI
	TILESTORED_DI_BX_T2
	ADDQ $64, DI
	TILESTORED_DI_BX_T3

	// The next row tile: lda bytes on in A, 16 rows down in C.
	ADDQ lda+16(FP), R10
	MOVQ BX, AX
	SHLQ $4, AX
	ADDQ AX, R11
	DECQ CX
	JNZ  tile

	// The next group: bgs bytes on in B, 64 columns right in C (and last).
	ADDQ  bgs+56(FP), R12
	ADDQ  $256, R13
	MOVQ  last+88(FP), AX
	TESTQ AX, AX
	JZ    next
	ADDQ  $256, AX
	MOVQ  AX, last+88(FP)

next:
	DECQ groups+48(FP)
	JNZ  group

	TILERELEASE
	RET

// func bf16Blocks(dst *uint16, src *float32, blocks int)
//
// Rounds blocks blocks of 32 float32 of src to bfloat16, ties to even, the
// block b to dst + 1024·b bytes (one row of a tile of A for each k block).
// NaNs are not kept quiet (see Float32ToBF16): activations have none.
TEXT ·bf16Blocks(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	TESTQ CX, CX
	JZ   done
	MOVL $1, AX
	VPBROADCASTD AX, Z2
	MOVL $0x7fff, AX
	VPBROADCASTD AX, Z3

loop:
	VMOVDQU32 (SI), Z0
	VPSRLD    $16, Z0, Z1
	VPANDD    Z2, Z1, Z1
	VPADDD    Z3, Z1, Z1
	VPADDD    Z0, Z1, Z1
	VPSRLD    $16, Z1, Z1
	VPMOVDW   Z1, (DI)
	VMOVDQU32 64(SI), Z0
	VPSRLD    $16, Z0, Z1
	VPANDD    Z2, Z1, Z1
	VPADDD    Z3, Z1, Z1
	VPADDD    Z0, Z1, Z1
	VPSRLD    $16, Z1, Z1
	VPMOVDW   Z1, 32(DI)
	ADDQ      $128, SI
	ADDQ      $1024, DI
	DECQ      CX
	JNZ       loop
	VZEROUPPER

done:
	RET
