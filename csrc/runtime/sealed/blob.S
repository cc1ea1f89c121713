/* The bytes of ctrlua-exec (trampoline.c, built by the Makefile into TRAMPOLINE_BIN), carried
 * in the core so that the runtime never reads it from a path a container could reach. */
    .section .rodata
    .balign 16
    .globl ctr_trampoline_start
    .globl ctr_trampoline_end
ctr_trampoline_start:
    .incbin TRAMPOLINE_BIN
ctr_trampoline_end:
    .section .note.GNU-stack,"",%progbits
