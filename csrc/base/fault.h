/* Fault injection for the crash tests (docs/crash-consistency.md): with CTRLUA_FAULT=STEP in
 * the environment, the process that reaches the point named STEP kills itself with SIGKILL
 * there, as a crash would.  The variable is read once, on the first call; when it is unset a
 * point costs a test of one pointer. */
#ifndef CTR_FAULT_H
#define CTR_FAULT_H

void ctr_fault(const char *step);

#endif
