/*
 * testutil.h — small helpers shared by the unit tests: a scratch directory, temporary
 * files and directories created with mkstemp/mkdtemp, and whole-file reads.
 *
 * Everything here is static inline so a test that uses only some helpers still builds
 * with -Werror. Paths returned are new (free them); files and directories the helpers
 * create are the caller's to remove.
 */
#ifndef LH_TESTUTIL_H
#define LH_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* CTest sets LH_TEST_TMP to a folder under the build tree; run by hand, use /tmp. */
static inline const char *
lh_test_tmp(void)
{
    const char *dir = getenv("LH_TEST_TMP");
    return dir && dir[0] ? dir : "/tmp";
}

/* Write len bytes to a new file <tmp>/<prefix>XXXXXX and set its mode. Returns new. */
static inline char *
lh_test_write_bytes(const char *prefix, const char *data, size_t len, mode_t mode)
{
    size_t size = strlen(lh_test_tmp()) + strlen(prefix) + 16;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%sXXXXXX", lh_test_tmp(), prefix);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        assert_true(w > 0);
        done += (size_t)w;
    }
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return path;
}

static inline char *
lh_test_write_file(const char *prefix, const char *text, mode_t mode)
{
    return lh_test_write_bytes(prefix, text, strlen(text), mode);
}

/* A new empty directory <tmp>/<prefix>XXXXXX. Returns new. */
static inline char *
lh_test_mkdtemp(const char *prefix)
{
    size_t size = strlen(lh_test_tmp()) + strlen(prefix) + 16;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%sXXXXXX", lh_test_tmp(), prefix);
    assert_non_null(mkdtemp(path));
    return path;
}

/* Remove a directory tree the test created (no symlinks are followed). */
static inline void
lh_test_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t size = strlen(path) + strlen(e->d_name) + 2;
            char *child = malloc(size);
            assert_non_null(child);
            snprintf(child, size, "%s/%s", path, e->d_name);
            lh_test_rm_rf(child);
            free(child);
        }
        closedir(d);
        assert_int_equal(rmdir(path), 0);
    } else {
        assert_int_equal(unlink(path), 0);
    }
}

/* The whole file as a NUL-terminated string (new), or NULL when it cannot be read. */
static inline char *
lh_test_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* Assert that haystack contains needle, reporting both on failure. */
#define assert_contains(haystack, needle)                                                          \
    lh_test_assert_contains((haystack), (needle), __FILE__, __LINE__)

static inline void
lh_test_assert_contains(const char *haystack, const char *needle, const char *file, int line)
{
    if (haystack != NULL && strstr(haystack, needle) != NULL)
        return;
    print_error("\"%s\" does not contain \"%s\"\n", haystack ? haystack : "(null)", needle);
    _fail(file, line);
}

#define assert_not_contains(haystack, needle)                                                      \
    lh_test_assert_not_contains((haystack), (needle), __FILE__, __LINE__)

static inline void
lh_test_assert_not_contains(const char *haystack, const char *needle, const char *file, int line)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        return;
    print_error("\"%s\" unexpectedly contains \"%s\"\n", haystack, needle);
    _fail(file, line);
}

/* Assert that s starts with prefix. */
#define assert_prefix(s, prefix) lh_test_assert_prefix((s), (prefix), __FILE__, __LINE__)

static inline void
lh_test_assert_prefix(const char *s, const char *prefix, const char *file, int line)
{
    if (s != NULL && strncmp(s, prefix, strlen(prefix)) == 0)
        return;
    print_error("\"%s\" does not start with \"%s\"\n", s ? s : "(null)", prefix);
    _fail(file, line);
}

#endif /* LH_TESTUTIL_H */
