/* libarchive, libcrypto and libseccomp (and, optionally, libisal), loaded on first use.
 *
 * Only importing, unpacking and hashing need the first two, and together with what they pull
 * in (libxml2, ICU, nettle, ...) they cost a process about 4 ms and 4 MiB just to be mapped and
 * relocated — more than the whole `run` path of a ready image.  Only a spec with a seccomp
 * filter needs libseccomp: linked in, its code (49 KB) and syscall tables (46 KB) were resident
 * in every run (the kernel maps 64 KiB of the page cache around a page touched, and the tables
 * sat beside LuaJIT's read-only data).  So the core does not link them: each call goes through
 * a table of pointers resolved by dlopen()/dlsym() the first time its library is needed (under
 * pthread_once).  Code keeps calling archive_*, EVP_* and seccomp_* by their names: this
 * header, included after <archive.h>, <openssl/evp.h> and <seccomp.h>, turns each name into
 * the table's entry.  A library that cannot be loaded is a broken installation: the process
 * says which and exits.  (libcurl is loaded the same way, by net/http.c.)
 *
 * A function used from libarchive, libcrypto or libseccomp must be listed here (the link fails
 * otherwise, as the core does not link them).
 */
#ifndef CTR_LAZYLIB_H
#define CTR_LAZYLIB_H

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <seccomp.h>

#define CTR_ARCHIVE_SYMS(X) \
    X(archive_entry_atime) \
    X(archive_entry_atime_is_set) \
    X(archive_entry_atime_nsec) \
    X(archive_entry_clear) \
    X(archive_entry_filetype) \
    X(archive_entry_free) \
    X(archive_entry_gid) \
    X(archive_entry_hardlink) \
    X(archive_entry_mtime) \
    X(archive_entry_mtime_is_set) \
    X(archive_entry_mtime_nsec) \
    X(archive_entry_new) \
    X(archive_entry_pathname) \
    X(archive_entry_perm) \
    X(archive_entry_rdevmajor) \
    X(archive_entry_rdevminor) \
    X(archive_entry_set_filetype) \
    X(archive_entry_set_gid) \
    X(archive_entry_set_hardlink) \
    X(archive_entry_set_mode) \
    X(archive_entry_set_mtime) \
    X(archive_entry_set_pathname) \
    X(archive_entry_set_perm) \
    X(archive_entry_set_rdevmajor) \
    X(archive_entry_set_rdevminor) \
    X(archive_entry_set_size) \
    X(archive_entry_set_symlink) \
    X(archive_entry_set_uid) \
    X(archive_entry_size) \
    X(archive_entry_size_is_set) \
    X(archive_entry_symlink) \
    X(archive_entry_uid) \
    X(archive_entry_xattr_add_entry) \
    X(archive_entry_xattr_next) \
    X(archive_entry_xattr_reset) \
    X(archive_errno) \
    X(archive_error_string) \
    X(archive_read_data) \
    X(archive_read_data_block) \
    X(archive_read_data_skip) \
    X(archive_read_free) \
    X(archive_read_new) \
    X(archive_read_next_header) \
    X(archive_read_open) \
    X(archive_read_open_fd) \
    X(archive_read_support_filter_all) \
    X(archive_read_support_filter_gzip) \
    X(archive_read_support_filter_zstd) \
    X(archive_read_support_format_empty) \
    X(archive_read_support_format_gnutar) \
    X(archive_read_support_format_raw) \
    X(archive_read_support_format_tar) \
    X(archive_set_error) \
    X(archive_version_string) \
    X(archive_write_add_filter_gzip) \
    X(archive_write_add_filter_zstd) \
    X(archive_write_close) \
    X(archive_write_data) \
    X(archive_write_free) \
    X(archive_write_header) \
    X(archive_write_new) \
    X(archive_write_open2) \
    X(archive_write_set_bytes_in_last_block) \
    X(archive_write_set_bytes_per_block) \
    X(archive_write_set_filter_option) \
    X(archive_write_set_format_option) \
    X(archive_write_set_format_pax_restricted) \
    X(archive_write_set_format_raw)

#define CTR_CRYPTO_SYMS(X) \
    X(EVP_Digest) \
    X(EVP_DigestFinal_ex) \
    X(EVP_DigestInit_ex) \
    X(EVP_DigestUpdate) \
    X(EVP_MD_CTX_free) \
    X(EVP_MD_CTX_new) \
    X(EVP_sha256)

#define CTR_SECCOMP_SYMS(X) \
    X(seccomp_arch_add) \
    X(seccomp_arch_native) \
    X(seccomp_attr_set) \
    X(seccomp_export_bpf) \
    X(seccomp_export_pfc) \
    X(seccomp_init) \
    X(seccomp_release) \
    X(seccomp_rule_add_array) \
    X(seccomp_syscall_resolve_name) \
    X(seccomp_syscall_resolve_name_arch)

/* ISA-L's igzip (Debian's libisal2), the fast inflate of gzip layers.  Optional: where it is
 * not installed, ctr_isal_api() returns NULL and libarchive's gzip filter (zlib) does the
 * work; where its header was absent at build time, CTR_HAVE_ISAL is 0 and so is the table.
 * Its functions are called through the table by name (isal->isal_inflate), not by macros. */
#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define CTR_HAVE_ISAL 1
#define CTR_ISAL_SYMS(X) \
    X(isal_inflate) \
    X(isal_inflate_init) \
    X(isal_inflate_reset)
#else
#define CTR_HAVE_ISAL 0
#define CTR_ISAL_SYMS(X)
#endif

#define CTR_LAZY_FIELD(f) __typeof__(f) *f;
struct ctr_archive_api {
    CTR_ARCHIVE_SYMS(CTR_LAZY_FIELD)
};
struct ctr_crypto_api {
    CTR_CRYPTO_SYMS(CTR_LAZY_FIELD)
};
struct ctr_seccomp_api {
    CTR_SECCOMP_SYMS(CTR_LAZY_FIELD)
};

struct ctr_isal_api {
    int unused; /* a struct needs a member when CTR_HAVE_ISAL is 0 */
    CTR_ISAL_SYMS(CTR_LAZY_FIELD)
};
#undef CTR_LAZY_FIELD

const struct ctr_archive_api *ctr_archive_api(void);
const struct ctr_crypto_api *ctr_crypto_api(void);
const struct ctr_seccomp_api *ctr_seccomp_api(void);
/* NULL when libisal cannot be loaded (not an error: the caller falls back). */
const struct ctr_isal_api *ctr_isal_api(void);

#ifndef CTR_LAZYLIB_IMPL
#define archive_entry_atime (ctr_archive_api()->archive_entry_atime)
#define archive_entry_atime_is_set (ctr_archive_api()->archive_entry_atime_is_set)
#define archive_entry_atime_nsec (ctr_archive_api()->archive_entry_atime_nsec)
#define archive_entry_clear (ctr_archive_api()->archive_entry_clear)
#define archive_entry_filetype (ctr_archive_api()->archive_entry_filetype)
#define archive_entry_free (ctr_archive_api()->archive_entry_free)
#define archive_entry_gid (ctr_archive_api()->archive_entry_gid)
#define archive_entry_hardlink (ctr_archive_api()->archive_entry_hardlink)
#define archive_entry_mtime (ctr_archive_api()->archive_entry_mtime)
#define archive_entry_mtime_is_set (ctr_archive_api()->archive_entry_mtime_is_set)
#define archive_entry_mtime_nsec (ctr_archive_api()->archive_entry_mtime_nsec)
#define archive_entry_new (ctr_archive_api()->archive_entry_new)
#define archive_entry_pathname (ctr_archive_api()->archive_entry_pathname)
#define archive_entry_perm (ctr_archive_api()->archive_entry_perm)
#define archive_entry_rdevmajor (ctr_archive_api()->archive_entry_rdevmajor)
#define archive_entry_rdevminor (ctr_archive_api()->archive_entry_rdevminor)
#define archive_entry_set_filetype (ctr_archive_api()->archive_entry_set_filetype)
#define archive_entry_set_gid (ctr_archive_api()->archive_entry_set_gid)
#define archive_entry_set_hardlink (ctr_archive_api()->archive_entry_set_hardlink)
#define archive_entry_set_mode (ctr_archive_api()->archive_entry_set_mode)
#define archive_entry_set_mtime (ctr_archive_api()->archive_entry_set_mtime)
#define archive_entry_set_pathname (ctr_archive_api()->archive_entry_set_pathname)
#define archive_entry_set_perm (ctr_archive_api()->archive_entry_set_perm)
#define archive_entry_set_rdevmajor (ctr_archive_api()->archive_entry_set_rdevmajor)
#define archive_entry_set_rdevminor (ctr_archive_api()->archive_entry_set_rdevminor)
#define archive_entry_set_size (ctr_archive_api()->archive_entry_set_size)
#define archive_entry_set_symlink (ctr_archive_api()->archive_entry_set_symlink)
#define archive_entry_set_uid (ctr_archive_api()->archive_entry_set_uid)
#define archive_entry_size (ctr_archive_api()->archive_entry_size)
#define archive_entry_size_is_set (ctr_archive_api()->archive_entry_size_is_set)
#define archive_entry_symlink (ctr_archive_api()->archive_entry_symlink)
#define archive_entry_uid (ctr_archive_api()->archive_entry_uid)
#define archive_entry_xattr_add_entry (ctr_archive_api()->archive_entry_xattr_add_entry)
#define archive_entry_xattr_next (ctr_archive_api()->archive_entry_xattr_next)
#define archive_entry_xattr_reset (ctr_archive_api()->archive_entry_xattr_reset)
#define archive_errno (ctr_archive_api()->archive_errno)
#define archive_error_string (ctr_archive_api()->archive_error_string)
#define archive_read_data (ctr_archive_api()->archive_read_data)
#define archive_read_data_block (ctr_archive_api()->archive_read_data_block)
#define archive_read_data_skip (ctr_archive_api()->archive_read_data_skip)
#define archive_read_free (ctr_archive_api()->archive_read_free)
#define archive_read_new (ctr_archive_api()->archive_read_new)
#define archive_read_next_header (ctr_archive_api()->archive_read_next_header)
#define archive_read_open (ctr_archive_api()->archive_read_open)
#define archive_read_open_fd (ctr_archive_api()->archive_read_open_fd)
#define archive_read_support_filter_all (ctr_archive_api()->archive_read_support_filter_all)
#define archive_read_support_filter_gzip (ctr_archive_api()->archive_read_support_filter_gzip)
#define archive_read_support_filter_zstd (ctr_archive_api()->archive_read_support_filter_zstd)
#define archive_read_support_format_empty (ctr_archive_api()->archive_read_support_format_empty)
#define archive_read_support_format_gnutar (ctr_archive_api()->archive_read_support_format_gnutar)
#define archive_read_support_format_raw (ctr_archive_api()->archive_read_support_format_raw)
#define archive_read_support_format_tar (ctr_archive_api()->archive_read_support_format_tar)
#define archive_set_error (ctr_archive_api()->archive_set_error)
#define archive_version_string (ctr_archive_api()->archive_version_string)
#define archive_write_add_filter_gzip (ctr_archive_api()->archive_write_add_filter_gzip)
#define archive_write_add_filter_zstd (ctr_archive_api()->archive_write_add_filter_zstd)
#define archive_write_close (ctr_archive_api()->archive_write_close)
#define archive_write_data (ctr_archive_api()->archive_write_data)
#define archive_write_free (ctr_archive_api()->archive_write_free)
#define archive_write_header (ctr_archive_api()->archive_write_header)
#define archive_write_new (ctr_archive_api()->archive_write_new)
#define archive_write_open2 (ctr_archive_api()->archive_write_open2)
#define archive_write_set_bytes_in_last_block (ctr_archive_api()->archive_write_set_bytes_in_last_block)
#define archive_write_set_bytes_per_block (ctr_archive_api()->archive_write_set_bytes_per_block)
#define archive_write_set_filter_option (ctr_archive_api()->archive_write_set_filter_option)
#define archive_write_set_format_option (ctr_archive_api()->archive_write_set_format_option)
#define archive_write_set_format_pax_restricted (ctr_archive_api()->archive_write_set_format_pax_restricted)
#define archive_write_set_format_raw (ctr_archive_api()->archive_write_set_format_raw)
#define EVP_Digest (ctr_crypto_api()->EVP_Digest)
#define EVP_DigestFinal_ex (ctr_crypto_api()->EVP_DigestFinal_ex)
#define EVP_DigestInit_ex (ctr_crypto_api()->EVP_DigestInit_ex)
#define EVP_DigestUpdate (ctr_crypto_api()->EVP_DigestUpdate)
#define EVP_MD_CTX_free (ctr_crypto_api()->EVP_MD_CTX_free)
#define EVP_MD_CTX_new (ctr_crypto_api()->EVP_MD_CTX_new)
#define EVP_sha256 (ctr_crypto_api()->EVP_sha256)
#define seccomp_arch_add (ctr_seccomp_api()->seccomp_arch_add)
#define seccomp_arch_native (ctr_seccomp_api()->seccomp_arch_native)
#define seccomp_attr_set (ctr_seccomp_api()->seccomp_attr_set)
#define seccomp_export_bpf (ctr_seccomp_api()->seccomp_export_bpf)
#define seccomp_export_pfc (ctr_seccomp_api()->seccomp_export_pfc)
#define seccomp_init (ctr_seccomp_api()->seccomp_init)
#define seccomp_release (ctr_seccomp_api()->seccomp_release)
#define seccomp_rule_add_array (ctr_seccomp_api()->seccomp_rule_add_array)
#define seccomp_syscall_resolve_name (ctr_seccomp_api()->seccomp_syscall_resolve_name)
#define seccomp_syscall_resolve_name_arch (ctr_seccomp_api()->seccomp_syscall_resolve_name_arch)
#endif

#endif
