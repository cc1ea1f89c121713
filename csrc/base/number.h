/* Numbers as the binding and the JSON layer check them. */
#ifndef CTR_NUMBER_H
#define CTR_NUMBER_H

/* Whether d is a whole number, as floor(d) == d says, without libm's floor: an -O0 or -Os
 * build calls it where -O2 inlines it, and the host loads libm only for Lua's arithmetic
 * (lua/libm.c), which a run never does.  Every double of magnitude 2^52 or more is whole. */
static inline int ctr_is_whole(double d)
{
    if (d != d)
        return 0;
    if (d >= 0x1p52 || d <= -0x1p52)
        return d - d == 0; /* not an infinity */
    return d == (double)(long long)d;
}

#endif
