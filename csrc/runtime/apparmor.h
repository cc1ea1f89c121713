/* AppArmor: process.apparmorProfile.  Checked at create (a clear error where the kernel has
 * no AppArmor), applied by the init as its exec label just before execve. */
#ifndef CTR_APPARMOR_H
#define CTR_APPARMOR_H

#include "base/error.h"

/* 0 when AppArmor is enabled on this host; -1 with an error naming what is missing. */
int ctr_apparmor_check(const char *profile, struct ctr_err *err);

/* Write "exec PROFILE" to the init's attr/apparmor/exec (attr/exec on older kernels) through
 * the /proc it sees, after checking that it is procfs. */
int ctr_apparmor_apply(const char *profile, struct ctr_err *err);

#endif
