/*
 * test_fs.c — the filesystem backend (src/storage/store_fs.c) through the lh_store
 * front: put/get/head round trips from buffers and files, byte ranges, create-only
 * puts (also raced by 8 threads), overwrites and ETags, deletes, listings with prefixes
 * and cursors (and refused prefixes), object/folder conflicts, copies, and a root that
 * disappears. Symbolic links anywhere under the root (in a key's folders, as the object
 * itself, as .lh-tmp) are never followed by any operation nor listed. A put racing a
 * delete that prunes its folder still succeeds. A sink's own error code (get_buffer's
 * size limit) reaches the caller, from the fs backend and from the s3 backend (against a
 * stand-in S3 server on loopback). Every test ends by checking that no temporary file
 * was left behind in <root>/.lh-tmp.
 */
#include "testutil.h"

#include "storage/storage.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

/* ---- helpers ------------------------------------------------------------------------- */

typedef struct fixture {
    char *root;
    lh_store *s;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->root = lh_test_mkdtemp("fs_store_");
    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_store_fs_open(f->root, &f->s, &err), 0);
    *state = f;
    return 0;
}

/* No file may be left in <root>/.lh-tmp (the folder itself may stay). */
static void
assert_no_temp_files(const char *root)
{
    char path[600];
    snprintf(path, sizeof path, "%s/.lh-tmp", root);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    size_t left = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        print_error("temporary file left behind: %s/%s\n", path, e->d_name);
        left++;
    }
    closedir(d);
    assert_int_equal(left, 0);
}

static int
teardown(void **state)
{
    fixture *f = *state;
    assert_no_temp_files(f->root);
    lh_store_free(f->s);
    lh_test_rm_rf(f->root);
    free(f->root);
    free(f);
    return 0;
}

static int
to_buf(void *ctx, const void *data, size_t len)
{
    lh_buf_append(ctx, data, len);
    return 0;
}

/* Get [offset, offset+len) of key, which must succeed and equal want. */
#define EXPECT_RANGE(s, key, offset, len, want)                                                    \
    expect_range((s), (key), (offset), (len), (want), __FILE__, __LINE__)

static void
expect_range(lh_store *s, const char *key, int64_t offset, int64_t len, const char *want,
             const char *file, int line)
{
    lh_buf buf;
    lh_buf_init(&buf);
    lh_err err;
    lh_err_clear(&err);
    lh_obj_info info;
    int rc = lh_store_get(s, key, offset, len, to_buf, &buf, &info, &err);
    if (rc != 0) {
        print_error("get %s [%lld, +%lld): %d %s\n", key, (long long)offset, (long long)len, rc,
                    err.message);
        lh_buf_free(&buf);
        _fail(file, line);
    }
    _assert_int_equal(buf.len, strlen(want), file, line);
    if (buf.len > 0)
        _assert_memory_equal(buf.data, want, buf.len, file, line);
    lh_buf_free(&buf);
}

/* The whole object as a new string; the get must succeed. */
static char *
get_string(lh_store *s, const char *key, lh_obj_info *info)
{
    lh_buf buf;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_store_get_buffer(s, key, 64u << 20, &buf, info, &err);
    if (rc != 0)
        print_error("get %s: %s\n", key, err.message);
    assert_int_equal(rc, 0);
    return buf.data;
}

#define EXPECT_CONTENT(s, key, want)                                                               \
    do {                                                                                           \
        char *got_ = get_string((s), (key), NULL);                                                 \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

static void
put_str(lh_store *s, const char *key, const char *text)
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_store_put_buffer(s, key, text, strlen(text), 0, &err);
    if (rc != 0)
        print_error("put %s: %s\n", key, err.message);
    assert_int_equal(rc, 0);
}

/* rc and err must be the failure want_rc with this HTTP status and code. */
#define expect_error(rc, err, want_rc, status, code)                                               \
    expect_error_at((rc), (err), (want_rc), (status), (code), __FILE__, __LINE__)

static void
expect_error_at(int rc, const lh_err *err, int want_rc, int status, const char *code,
                const char *file, int line)
{
    if (rc != want_rc)
        print_error("rc %d, expected %d (%s: %s)\n", rc, want_rc, err->code, err->message);
    _assert_int_equal(rc, want_rc, file, line);
    _assert_int_equal(err->rc, want_rc, file, line);
    _assert_int_equal(err->http_status, status, file, line);
    _assert_string_equal(err->code, code, file, line);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void
test_round_trip_buffer(void **state)
{
    fixture *f = *state;
    lh_err err;
    lh_obj_info put_info, head_info, get_info;
    memset(&put_info, 0, sizeof put_info);
    const char *text = "hello, storage\n";
    lh_source src = {.data = text, .fd = -1, .len = (int64_t)strlen(text)};
    assert_int_equal(lh_store_put(f->s, "greetings/hello.txt", &src, 0, &put_info, &err), 0);
    assert_int_equal(put_info.size, (int64_t)strlen(text));
    assert_true(put_info.etag[0] != '\0');
    assert_true(put_info.mtime_us > 0);

    assert_int_equal(lh_store_head(f->s, "greetings/hello.txt", &head_info, &err), 0);
    assert_int_equal(head_info.size, (int64_t)strlen(text));
    assert_string_equal(head_info.etag, put_info.etag);
    assert_int_equal(head_info.mtime_us, put_info.mtime_us);

    char *got = get_string(f->s, "greetings/hello.txt", &get_info);
    assert_string_equal(got, text);
    free(got);
    assert_string_equal(get_info.etag, put_info.etag);
    assert_int_equal(get_info.size, head_info.size);

    /* the object is a plain file under the root */
    char path[600];
    snprintf(path, sizeof path, "%s/greetings/hello.txt", f->root);
    got = lh_test_read_file(path, NULL);
    assert_non_null(got);
    assert_string_equal(got, text);
    free(got);

    /* and can be opened for sendfile */
    int fd = -1;
    lh_obj_info local;
    assert_int_equal(lh_store_open_local(f->s, "greetings/hello.txt", &fd, &local, &err), 0);
    assert_true(fd >= 0);
    char small[64] = {0};
    assert_int_equal(read(fd, small, sizeof small - 1), (ssize_t)strlen(text));
    assert_string_equal(small, text);
    assert_string_equal(local.etag, put_info.etag);
    close(fd);

    /* empty objects exist too */
    assert_int_equal(lh_store_put_buffer(f->s, "empty", "", 0, 0, &err), 0);
    assert_int_equal(lh_store_head(f->s, "empty", &head_info, &err), 0);
    assert_int_equal(head_info.size, 0);
    got = get_string(f->s, "empty", NULL);
    assert_string_equal(got, "");
    free(got);

    /* unicode and spaces reach the filesystem as they are */
    put_str(f->s, "r\xC3\xA9sum\xC3\xA9/\xC3\xBC file.csv", "a,b\n1,2\n");
    EXPECT_CONTENT(f->s, "r\xC3\xA9sum\xC3\xA9/\xC3\xBC file.csv", "a,b\n1,2\n");

    assert_string_equal(lh_store_backend(f->s), "fs");
    char resolved[PATH_MAX];
    assert_non_null(realpath(f->root, resolved));
    char describe[PATH_MAX + 8];
    snprintf(describe, sizeof describe, "fs:%s", resolved);
    assert_string_equal(lh_store_describe(f->s), describe);
}

static void
test_round_trip_fd(void **state)
{
    fixture *f = *state;
    /* larger than the backend's 256 KiB copy chunk, not a multiple of it */
    size_t len = 700 * 1024 + 17;
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)((i * 31 + i / 1000) & 0xff);
    char *file = lh_test_write_bytes("fs_src_", data, len, 0600);
    int fd = open(file, O_RDONLY);
    assert_true(fd >= 0);

    lh_err err;
    lh_obj_info info;
    lh_source src = {.data = NULL, .fd = fd, .len = (int64_t)len};
    assert_int_equal(lh_store_put(f->s, "big/blob.bin", &src, 0, &info, &err), 0);
    assert_int_equal(info.size, (int64_t)len);
    /* the caller keeps its descriptor: still open, and the put read it with pread */
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
    assert_int_equal(fcntl(fd, F_GETFD) >= 0, 1);

    lh_buf buf;
    lh_obj_info got_info;
    assert_int_equal(lh_store_get_buffer(f->s, "big/blob.bin", len, &buf, &got_info, &err), 0);
    assert_int_equal(buf.len, len);
    assert_memory_equal(buf.data, data, len);
    assert_string_equal(got_info.etag, info.etag);
    lh_buf_free(&buf);

    /* a buffer limit below the size refuses the object */
    assert_int_not_equal(lh_store_get_buffer(f->s, "big/blob.bin", len - 1, &buf, NULL, &err), 0);

    /* a range across a chunk boundary */
    lh_buf_init(&buf);
    assert_int_equal(
        lh_store_get(f->s, "big/blob.bin", 256 * 1024 - 5, 10, to_buf, &buf, NULL, &err), 0);
    assert_int_equal(buf.len, 10);
    assert_memory_equal(buf.data, data + 256 * 1024 - 5, 10);
    lh_buf_free(&buf);

    /* a source shorter than it claims fails cleanly and stores nothing */
    lh_source liar = {.data = NULL, .fd = fd, .len = (int64_t)len + 100};
    lh_err_clear(&err);
    assert_int_equal(lh_store_put(f->s, "big/liar.bin", &liar, 0, NULL, &err), LH_EIO);
    assert_int_equal(lh_store_head(f->s, "big/liar.bin", &info, &err), LH_ENOTFOUND);

    close(fd);
    unlink(file);
    free(file);
    free(data);
}

/* ---- ranges ----------------------------------------------------------------------------- */

static int
stop_at_once(void *ctx, const void *data, size_t len)
{
    (*(int *)ctx)++;
    return 1;
}

static void
test_ranges(void **state)
{
    fixture *f = *state;
    put_str(f->s, "digits", "0123456789");
    EXPECT_RANGE(f->s, "digits", 0, -1, "0123456789");
    EXPECT_RANGE(f->s, "digits", 2, 3, "234");
    EXPECT_RANGE(f->s, "digits", 0, 1, "0");
    EXPECT_RANGE(f->s, "digits", 7, -1, "789");
    EXPECT_RANGE(f->s, "digits", 9, 1, "9");
    EXPECT_RANGE(f->s, "digits", 9, 100, "9"); /* a length past the end stops at the end */
    EXPECT_RANGE(f->s, "digits", 3, 0, "");
    EXPECT_RANGE(f->s, "digits", 10, 0, ""); /* offset == size, nothing asked: fine */

    lh_err err;
    lh_obj_info info;
    lh_buf buf;
    lh_buf_init(&buf);
    /* past the end */
    lh_err_clear(&err);
    int rc = lh_store_get(f->s, "digits", 11, 1, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");
    assert_contains(err.message, "past the end of the 10-byte object");
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "digits", 11, 0, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "digits", 1000, -1, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");
    /* offset == size asking for bytes: there are none to give */
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "digits", 10, 1, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "digits", 10, -1, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");
    /* negative start */
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "digits", -1, 2, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");
    assert_int_equal(buf.len, 0); /* no refused range wrote anything */
    lh_buf_free(&buf);

    /* an empty object: the whole of it and empty ranges are fine, anything else is not */
    put_str(f->s, "nothing", "");
    EXPECT_RANGE(f->s, "nothing", 0, -1, "");
    EXPECT_RANGE(f->s, "nothing", 0, 0, "");
    EXPECT_RANGE(f->s, "nothing", 0, 5, "");
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "nothing", 1, 0, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_EINVAL, 416, "invalid_range");

    /* a missing key is 404 whatever the range */
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "missing", 5, 1, to_buf, &buf, &info, &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");

    /* a sink that stops makes the get stop */
    int calls = 0;
    lh_err_clear(&err);
    rc = lh_store_get(f->s, "digits", 0, -1, stop_at_once, &calls, &info, &err);
    assert_int_equal(rc, LH_ECANCELED);
    assert_int_equal(calls, 1);
}

/* ---- create-only, overwrite, delete ------------------------------------------------------- */

static void
test_create_only(void **state)
{
    fixture *f = *state;
    lh_err err;
    lh_obj_info first, after;
    lh_source src = {.data = "original", .fd = -1, .len = 8};
    assert_int_equal(lh_store_put(f->s, "once/key", &src, LH_PUT_CREATE_ONLY, &first, &err), 0);
    assert_int_equal(first.size, 8);

    lh_source other = {.data = "replacement", .fd = -1, .len = 11};
    lh_err_clear(&err);
    int rc = lh_store_put(f->s, "once/key", &other, LH_PUT_CREATE_ONLY, &after, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "object_exists");
    assert_contains(err.message, "once/key");
    assert_int_equal(lh_store_put_buffer(f->s, "once/key", "x", 1, LH_PUT_CREATE_ONLY, &err),
                     LH_EEXIST);

    /* the original is untouched, down to its etag */
    EXPECT_CONTENT(f->s, "once/key", "original");
    assert_int_equal(lh_store_head(f->s, "once/key", &after, &err), 0);
    assert_string_equal(after.etag, first.etag);
    assert_int_equal(after.size, 8);

    /* a create-only put of a new key next to it works */
    assert_int_equal(lh_store_put_buffer(f->s, "once/other", "y", 1, LH_PUT_CREATE_ONLY, &err), 0);
    EXPECT_CONTENT(f->s, "once/other", "y");
    /* after a delete the key can be created again */
    assert_int_equal(lh_store_delete(f->s, "once/key", &err), 0);
    assert_int_equal(lh_store_put_buffer(f->s, "once/key", "again", 5, LH_PUT_CREATE_ONLY, &err),
                     0);
    EXPECT_CONTENT(f->s, "once/key", "again");
}

static void
test_overwrite_changes_etag(void **state)
{
    fixture *f = *state;
    lh_err err;
    enum { ROUNDS = 6 };
    char etags[ROUNDS][LH_ETAG_MAX];
    for (int i = 0; i < ROUNDS; i++) {
        char text[16];
        snprintf(text, sizeof text, "version %d", i); /* same size every time */
        lh_obj_info put_info, head_info;
        lh_source src = {.data = text, .fd = -1, .len = (int64_t)strlen(text)};
        assert_int_equal(lh_store_put(f->s, "doc.txt", &src, 0, &put_info, &err), 0);
        assert_int_equal(lh_store_head(f->s, "doc.txt", &head_info, &err), 0);
        assert_string_equal(head_info.etag, put_info.etag);
        EXPECT_CONTENT(f->s, "doc.txt", text);
        snprintf(etags[i], sizeof etags[i], "%s", put_info.etag);
        /* every version has an etag no earlier version had */
        for (int k = 0; k < i; k++)
            assert_string_not_equal(etags[i], etags[k]);
    }
}

static void
test_delete(void **state)
{
    fixture *f = *state;
    lh_err err;
    lh_obj_info info;
    lh_buf buf;
    put_str(f->s, "trash/deep/item", "bye");
    assert_int_equal(lh_store_delete(f->s, "trash/deep/item", &err), 0);

    lh_err_clear(&err);
    int rc = lh_store_get_buffer(f->s, "trash/deep/item", 100, &buf, &info, &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    rc = lh_store_head(f->s, "trash/deep/item", &info, &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    rc = lh_store_delete(f->s, "trash/deep/item", &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    rc = lh_store_delete(f->s, "never/was", &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");

    /* the emptied folders went too: the name is free for an object */
    char path[600];
    snprintf(path, sizeof path, "%s/trash", f->root);
    struct stat st;
    assert_int_not_equal(lstat(path, &st), 0);
    put_str(f->s, "trash", "now a file");
    EXPECT_CONTENT(f->s, "trash", "now a file");
    /* the root itself stays */
    assert_int_equal(lh_store_delete(f->s, "trash", &err), 0);
    assert_int_equal(stat(f->root, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(lh_store_probe(f->s, &err), 0);

    /* a folder is not an object: head/get/delete of it are 404, whatever errno held
     * before the call, and delete leaves what is inside alone */
    put_str(f->s, "folder/inside", "kept");
    static const int stale[] = {0, EEXIST, EIO, EACCES, ENOSPC};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        lh_err_clear(&err);
        errno = stale[i];
        rc = lh_store_head(f->s, "folder", &info, &err);
        expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
        lh_err_clear(&err);
        errno = stale[i];
        rc = lh_store_delete(f->s, "folder", &err);
        expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
        lh_err_clear(&err);
        errno = stale[i];
        rc = lh_store_get_buffer(f->s, "folder", 100, &buf, &info, &err);
        expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    }
    EXPECT_CONTENT(f->s, "folder/inside", "kept");
    /* a path through an object is not found either */
    lh_err_clear(&err);
    rc = lh_store_head(f->s, "folder/inside/more", &info, &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    rc = lh_store_get_buffer(f->s, "folder/inside/more", 100, &buf, &info, &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    rc = lh_store_delete(f->s, "folder/inside/more", &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
}

/* ---- listing ------------------------------------------------------------------------------- */

/* List prefix from cursor with limit; the keys must be exactly want (NULL-terminated),
 * next_cursor must equal want_cursor (NULL: last page). */
#define EXPECT_LIST(s, prefix, cursor, limit, want_cursor, ...)                                    \
    do {                                                                                           \
        const char *want_[] = {__VA_ARGS__, NULL};                                                 \
        expect_list((s), (prefix), (cursor), (limit), want_, (want_cursor), __FILE__, __LINE__);   \
    } while (0)

static void
expect_list(lh_store *s, const char *prefix, const char *cursor, size_t limit,
            const char *const *want, const char *want_cursor, const char *file, int line)
{
    lh_list_page page;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_store_list(s, prefix, cursor, limit, &page, &err);
    if (rc != 0) {
        print_error("list '%s': %s\n", prefix, err.message);
        _fail(file, line);
    }
    size_t n_want = 0;
    while (want[n_want])
        n_want++;
    bool ok = page.n == n_want;
    for (size_t i = 0; ok && i < n_want; i++)
        ok = strcmp(page.entries[i].key, want[i]) == 0;
    ok = ok && ((want_cursor == NULL && page.next_cursor == NULL) ||
                (want_cursor && page.next_cursor && strcmp(want_cursor, page.next_cursor) == 0));
    if (!ok) {
        print_error("list prefix '%s' cursor '%s' limit %zu gave %zu keys:\n", prefix,
                    cursor ? cursor : "(none)", limit, page.n);
        for (size_t i = 0; i < page.n; i++)
            print_error("  '%s'\n", page.entries[i].key);
        print_error("next_cursor '%s', expected %zu keys, cursor '%s'\n",
                    page.next_cursor ? page.next_cursor : "(null)", n_want,
                    want_cursor ? want_cursor : "(null)");
        lh_list_page_free(&page);
        _fail(file, line);
    }
    lh_list_page_free(&page);
}

static void
test_list_pagination(void **state)
{
    fixture *f = *state;
    /* put out of order */
    static const char *const keys[] = {"k3", "k1", "k5", "k2", "k4"};
    for (size_t i = 0; i < 5; i++)
        put_str(f->s, keys[i], keys[i]);

    EXPECT_LIST(f->s, "", NULL, 2, "k2", "k1", "k2");
    EXPECT_LIST(f->s, "", "k2", 2, "k4", "k3", "k4");
    EXPECT_LIST(f->s, "", "k4", 2, NULL, "k5");
    EXPECT_LIST(f->s, "", "k5", 2, NULL, NULL);
    EXPECT_LIST(f->s, "", NULL, 5, NULL, "k1", "k2", "k3", "k4", "k5");
    EXPECT_LIST(f->s, "", NULL, 0, NULL, "k1", "k2", "k3", "k4", "k5"); /* 0: the default */
    EXPECT_LIST(f->s, "", "", 4, "k4", "k1", "k2", "k3", "k4");         /* "": no cursor */
    /* a cursor need not be a key: listing goes on after it */
    EXPECT_LIST(f->s, "", "k2x", 10, NULL, "k3", "k4", "k5");
    EXPECT_LIST(f->s, "", "a", 1, "k1", "k1");
    EXPECT_LIST(f->s, "", "zzz", 10, NULL, NULL);

    /* walk every page with limit 2 and collect all keys once */
    char *cursor = NULL;
    size_t seen = 0, pages = 0;
    for (;;) {
        lh_list_page page;
        lh_err err;
        assert_int_equal(lh_store_list(f->s, "k", cursor, 2, &page, &err), 0);
        free(cursor);
        cursor = page.next_cursor ? strdup(page.next_cursor) : NULL;
        for (size_t i = 0; i < page.n; i++) {
            char want[8];
            snprintf(want, sizeof want, "k%zu", seen + 1);
            assert_string_equal(page.entries[i].key, want);
            lh_obj_info info;
            assert_int_equal(lh_store_head(f->s, want, &info, &err), 0);
            assert_int_equal(page.entries[i].size, info.size);
            assert_string_equal(page.entries[i].etag, info.etag);
            assert_int_equal(page.entries[i].mtime_us, info.mtime_us);
            seen++;
        }
        pages++;
        lh_list_page_free(&page);
        if (cursor == NULL)
            break;
    }
    assert_int_equal(seen, 5);
    assert_int_equal(pages, 3);
}

typedef struct collected {
    char keys[16][32];
    size_t n;
} collected;

static int
collect(void *ctx, const lh_list_entry *e)
{
    collected *c = ctx;
    if (c->n < 16)
        snprintf(c->keys[c->n++], sizeof c->keys[0], "%s", e->key);
    return strcmp(e->key, "stop") == 0 ? 7 : 0;
}

static bool
not_ab(void *ctx, const char *folder)
{
    (void)ctx;
    return strcmp(folder, "dir/ab/") != 0;
}

/* lh_store_each_in: one walk in key order that leaves out the folders enter refuses; fn's
 * own stop is returned. */
static void
test_each_in_skips_folders(void **state)
{
    fixture *f = *state;
    static const char *const keys[] = {"dir/ab/x", "dir/abc", "dir/a", "dir/ab/y/z",
                                       "dir/ab-c", "top",     "stop",  "zz"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        put_str(f->s, keys[i], keys[i]);
    collected c = {0};
    lh_err err;
    assert_int_equal(lh_store_each_in(f->s, "dir/", not_ab, NULL, collect, &c, &err), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.keys[0], "dir/a");
    assert_string_equal(c.keys[1], "dir/ab-c");
    assert_string_equal(c.keys[2], "dir/abc");
    memset(&c, 0, sizeof c);
    assert_int_equal(lh_store_each_in(f->s, "", not_ab, NULL, collect, &c, &err), 7);
    assert_int_equal(c.n, 4); /* dir/a dir/ab-c dir/abc stop: stopped there */
    assert_string_equal(c.keys[3], "stop");
    memset(&c, 0, sizeof c);
    assert_int_equal(lh_store_each_in(f->s, "../", not_ab, NULL, collect, &c, &err), LH_EINVAL);
}

static void
test_list_prefix_and_order(void **state)
{
    fixture *f = *state;
    static const char *const keys[] = {"dir/b",      "dir/ab/x", "dir/abc", "dir/a",
                                       "dir/ab",     "dira",     "Zed",     "a-b",
                                       "a/b",        "a0",       "B",       "\xC3\xA9t\xC3\xA9",
                                       "dir/ab/y/z", "dir/ab-c"};
    lh_err err;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        /* "dir/ab" cannot be both an object and a folder: skip it */
        if (strcmp(keys[i], "dir/ab") == 0)
            continue;
        put_str(f->s, keys[i], keys[i]);
    }
    /* byte order: 'B' < 'Z' < 'a'; '-' (0x2d) < '/' (0x2f) < '0' (0x30) < 'c'; 0xC3 last */
    EXPECT_LIST(f->s, "", NULL, 100, NULL, "B", "Zed", "a-b", "a/b", "a0", "dir/a", "dir/ab-c",
                "dir/ab/x", "dir/ab/y/z", "dir/abc", "dir/b", "dira", "\xC3\xA9t\xC3\xA9");
    /* a prefix that ends mid-name matches files and folders starting with it */
    EXPECT_LIST(f->s, "dir/ab", NULL, 100, NULL, "dir/ab-c", "dir/ab/x", "dir/ab/y/z", "dir/abc");
    EXPECT_LIST(f->s, "dir/ab", NULL, 2, "dir/ab/x", "dir/ab-c", "dir/ab/x");
    EXPECT_LIST(f->s, "dir/ab", "dir/ab/x", 2, NULL, "dir/ab/y/z", "dir/abc");
    EXPECT_LIST(f->s, "dir/ab/", NULL, 100, NULL, "dir/ab/x", "dir/ab/y/z");
    EXPECT_LIST(f->s, "dir/", NULL, 100, NULL, "dir/a", "dir/ab-c", "dir/ab/x", "dir/ab/y/z",
                "dir/abc", "dir/b");
    EXPECT_LIST(f->s, "dir", NULL, 100, NULL, "dir/a", "dir/ab-c", "dir/ab/x", "dir/ab/y/z",
                "dir/abc", "dir/b", "dira");
    EXPECT_LIST(f->s, "di", NULL, 3, "dir/ab/x", "dir/a", "dir/ab-c", "dir/ab/x");
    EXPECT_LIST(f->s, "a", NULL, 100, NULL, "a-b", "a/b", "a0");
    EXPECT_LIST(f->s, "\xC3", NULL, 100, NULL, "\xC3\xA9t\xC3\xA9");
    EXPECT_LIST(f->s, "dir/a", NULL, 100, NULL, "dir/a", "dir/ab-c", "dir/ab/x", "dir/ab/y/z",
                "dir/abc");
    EXPECT_LIST(f->s, "dir/a/", NULL, 100, NULL, NULL); /* dir/a is a file */
    EXPECT_LIST(f->s, "nothing/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "nothing/deeper/", NULL, 100, NULL, NULL);
    /* pages of every size, cursors inside and between folders: the same keys in order (a
     * page's walk enters only folders after its cursor and stops when it is full) */
    static const char *const all[] = {"B",
                                      "Zed",
                                      "a-b",
                                      "a/b",
                                      "a0",
                                      "dir/a",
                                      "dir/ab-c",
                                      "dir/ab/x",
                                      "dir/ab/y/z",
                                      "dir/abc",
                                      "dir/b",
                                      "dira",
                                      "\xC3\xA9t\xC3\xA9"};
    size_t n_all = sizeof all / sizeof all[0];
    for (size_t limit = 1; limit <= n_all + 1; limit++) {
        char *cursor = NULL;
        size_t seen = 0;
        do {
            lh_list_page page;
            assert_int_equal(lh_store_list(f->s, "", cursor, limit, &page, &err), 0);
            free(cursor);
            cursor = page.next_cursor ? strdup(page.next_cursor) : NULL;
            assert_true(page.n <= limit);
            for (size_t i = 0; i < page.n; i++) {
                assert_true(seen < n_all);
                assert_string_equal(page.entries[i].key, all[seen++]);
            }
            lh_list_page_free(&page);
        } while (cursor);
        assert_int_equal(seen, n_all);
    }
    EXPECT_LIST(f->s, "dir/abc", NULL, 100, NULL, "dir/abc");

    /* bad prefixes are refused */
    lh_list_page page;
    lh_err_clear(&err);
    int rc = lh_store_list(f->s, "/dir", NULL, 10, &page, &err);
    expect_error(rc, &err, LH_EINVAL, 400, "invalid_key");
    lh_err_clear(&err);
    rc = lh_store_list(f->s, "a\\b", NULL, 10, &page, &err);
    expect_error(rc, &err, LH_EINVAL, 400, "invalid_key");
    /* and a prefix cannot climb out of the root: ".." segments are refused outright */
    lh_err_clear(&err);
    rc = lh_store_list(f->s, "../", NULL, 10, &page, &err);
    expect_error(rc, &err, LH_EINVAL, 400, "invalid_key");
    lh_err_clear(&err);
    rc = lh_store_list(f->s, "dir/../../", NULL, 10, &page, &err);
    expect_error(rc, &err, LH_EINVAL, 400, "invalid_key");
}

static void
test_list_prefix_validation(void **state)
{
    fixture *f = *state;
    put_str(f->s, "a/b.txt", "b");
    put_str(f->s, "..x", "dots");
    /* a write in flight: its temporary file must never show, whatever the prefix */
    char tmp_dir[600], stray[700];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/.lh-tmp", f->root);
    mkdir(tmp_dir, 0700);
    snprintf(stray, sizeof stray, "%s/0123456789abcdef", tmp_dir);
    FILE *fp = fopen(stray, "w");
    assert_non_null(fp);
    fclose(fp);

    /* whole segments that are empty, "." or "..", backslashes and control characters */
    static const char *const bad[] = {
        "./",   "./a/",   "./.lh-tmp/", "a//", "a//b",  "//",     "a/./", "a/./b", "../",  "a/../",
        "..//", "a/../b", "a\\b",       "a\\", "a\x01", "a/\x1f", "\x7f", "a\tb",  "a\nb/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lh_list_page page;
        lh_err err;
        lh_err_clear(&err);
        int rc = lh_store_list(f->s, bad[i], NULL, 10, &page, &err);
        if (rc != LH_EINVAL)
            print_error("prefix '%s' was accepted (%zu keys)\n", bad[i], rc == 0 ? page.n : 0);
        if (rc == 0)
            lh_list_page_free(&page);
        expect_error(rc, &err, LH_EINVAL, 400, "invalid_key");
        assert_true(page.n == 0 && page.entries == NULL && page.next_cursor == NULL);
    }
    /* a final, partial segment may be anything a key segment can start with */
    EXPECT_LIST(f->s, ".", NULL, 100, NULL, "..x");
    EXPECT_LIST(f->s, "..", NULL, 100, NULL, "..x");
    EXPECT_LIST(f->s, "a/.", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "a/..", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "a/b", NULL, 100, NULL, "a/b.txt");
    EXPECT_LIST(f->s, ".lh-tmp/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "", NULL, 100, NULL, "..x", "a/b.txt");
    assert_int_equal(unlink(stray), 0);
}

static void
test_list_hides_temp_files(void **state)
{
    fixture *f = *state;
    put_str(f->s, "visible", "v");
    /* a write that crashed half-way leaves a file in .lh-tmp */
    char tmp_dir[600], stray[700];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/.lh-tmp", f->root);
    mkdir(tmp_dir, 0700);
    snprintf(stray, sizeof stray, "%s/0123456789abcdef", tmp_dir);
    FILE *fp = fopen(stray, "w");
    assert_non_null(fp);
    fputs("half-written", fp);
    fclose(fp);

    EXPECT_LIST(f->s, "", NULL, 100, NULL, "visible");
    EXPECT_LIST(f->s, ".", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, ".lh", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, ".lh-tmp", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, ".lh-tmp/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, ".lh-tmp/0", NULL, 100, NULL, NULL);
    /* nor can it be read through the store */
    lh_obj_info info;
    lh_err err;
    assert_int_equal(lh_store_head(f->s, ".lh-tmp/0123456789abcdef", &info, &err), LH_EINVAL);
    assert_int_equal(unlink(stray), 0);
    /* a folder named like it below the top is an ordinary key */
    put_str(f->s, "sub/.lh-tmp/file", "ok");
    EXPECT_LIST(f->s, "sub/", NULL, 100, NULL, "sub/.lh-tmp/file");
}

static void
test_list_deep_keys(void **state)
{
    fixture *f = *state;
    /* the deepest key there can be: 512 one-letter segments (1023 bytes) */
    char key[LH_KEY_MAX + 1];
    size_t n = 0;
    for (int i = 0; i < 512; i++) {
        if (i)
            key[n++] = '/';
        key[n++] = 'd';
    }
    key[n] = '\0';
    put_str(f->s, key, "deep");
    EXPECT_CONTENT(f->s, key, "deep");
    put_str(f->s, "d/shallow", "s");
    EXPECT_LIST(f->s, "", NULL, 100, NULL, key, "d/shallow");
    EXPECT_LIST(f->s, "d/d/d/", NULL, 100, NULL, key);
    lh_err err;
    assert_int_equal(lh_store_delete(f->s, key, &err), 0);
    EXPECT_LIST(f->s, "", NULL, 100, NULL, "d/shallow");
}

/* ---- conflicts and copies ---------------------------------------------------------------- */

static void
test_key_conflict(void **state)
{
    fixture *f = *state;
    lh_err err;
    put_str(f->s, "a", "object a");

    /* "a" is an object: it cannot be a folder too */
    lh_err_clear(&err);
    int rc = lh_store_put_buffer(f->s, "a/b", "x", 1, 0, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
    assert_contains(err.message, "a/b");
    assert_contains(err.hint, "folder");
    lh_err_clear(&err);
    rc = lh_store_put_buffer(f->s, "a/b/c", "x", 1, LH_PUT_CREATE_ONLY, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
    EXPECT_CONTENT(f->s, "a", "object a");

    /* "x" is a folder: it cannot be an object too, with either kind of put */
    put_str(f->s, "x/y", "inside");
    lh_err_clear(&err);
    rc = lh_store_put_buffer(f->s, "x", "z", 1, 0, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
    lh_err_clear(&err);
    rc = lh_store_put_buffer(f->s, "x", "z", 1, LH_PUT_CREATE_ONLY, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
    EXPECT_CONTENT(f->s, "x/y", "inside");
    /* a copy onto a folder is the same conflict */
    lh_err_clear(&err);
    rc = lh_store_copy(f->s, "a", "x", &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");

    EXPECT_LIST(f->s, "", NULL, 100, NULL, "a", "x/y");
}

static void
test_copy(void **state)
{
    fixture *f = *state;
    lh_err err;
    lh_obj_info src_info, dst_info;
    put_str(f->s, "orig/data.csv", "id,v\n1,2\n");
    assert_int_equal(lh_store_head(f->s, "orig/data.csv", &src_info, &err), 0);
    assert_int_equal(lh_store_copy(f->s, "orig/data.csv", "copies/one/data.csv", &err), 0);
    EXPECT_CONTENT(f->s, "copies/one/data.csv", "id,v\n1,2\n");
    EXPECT_CONTENT(f->s, "orig/data.csv", "id,v\n1,2\n");
    assert_int_equal(lh_store_head(f->s, "copies/one/data.csv", &dst_info, &err), 0);
    assert_int_equal(dst_info.size, src_info.size);
    assert_string_not_equal(dst_info.etag, src_info.etag); /* a separate object */
    /* the copy is independent of the original */
    put_str(f->s, "orig/data.csv", "changed");
    EXPECT_CONTENT(f->s, "copies/one/data.csv", "id,v\n1,2\n");

    /* copying onto an existing object replaces it; onto itself changes nothing */
    put_str(f->s, "target", "old target");
    assert_int_equal(lh_store_copy(f->s, "orig/data.csv", "target", &err), 0);
    EXPECT_CONTENT(f->s, "target", "changed");
    assert_int_equal(lh_store_copy(f->s, "target", "target", &err), 0);
    EXPECT_CONTENT(f->s, "target", "changed");

    lh_err_clear(&err);
    int rc = lh_store_copy(f->s, "no/such", "dest", &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    assert_int_equal(lh_store_head(f->s, "dest", &dst_info, &err), LH_ENOTFOUND);
}

/* ---- symbolic links: never followed anywhere under the root -------------------------------- */

static char *
join(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

static void
write_text(const char *dir, const char *name, const char *text)
{
    char *path = join(dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
    free(path);
}

static void
make_symlink(const char *target, const char *dir, const char *name)
{
    char *path = join(dir, name);
    assert_int_equal(symlink(target, path), 0);
    free(path);
}

static bool
is_symlink(const char *dir, const char *name)
{
    char *path = join(dir, name);
    struct stat st;
    bool yes = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    free(path);
    return yes;
}

/* A folder outside every bucket: s.txt and sub/file. Returns new. */
static char *
make_outside(void)
{
    char *dir = lh_test_mkdtemp("fs_outside_");
    write_text(dir, "s.txt", "outside secret");
    char *sub = join(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    free(sub);
    write_text(dir, "sub/file", "outside file");
    return dir;
}

static size_t
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* The outside folder holds exactly what make_outside put there. */
static void
expect_outside_untouched(const char *dir)
{
    assert_int_equal(count_entries(dir), 2);
    char *sub = join(dir, "sub");
    assert_int_equal(count_entries(sub), 1);
    free(sub);
    char *path = join(dir, "s.txt");
    char *text = lh_test_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, "outside secret");
    free(text);
    free(path);
    path = join(dir, "sub/file");
    text = lh_test_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, "outside file");
    free(text);
    free(path);
}

/* Every read of key is a 404 and changes nothing; no local path is given for it. */
static void
expect_unreadable(lh_store *s, const char *key)
{
    lh_err err;
    lh_obj_info info;
    lh_buf buf;
    lh_err_clear(&err);
    int rc = lh_store_get_buffer(s, key, 1 << 20, &buf, &info, &err);
    if (rc == 0) {
        print_error("get %s gave '%s'\n", key, buf.data);
        lh_buf_free(&buf);
    }
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    expect_error(lh_store_head(s, key, &info, &err), &err, LH_ENOTFOUND, 404, "object_not_found");
    int fd = -1;
    lh_err_clear(&err);
    rc = lh_store_open_local(s, key, &fd, &info, &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    assert_int_equal(fd, -1);
    lh_err_clear(&err);
    expect_error(lh_store_delete(s, key, &err), &err, LH_ENOTFOUND, 404, "object_not_found");
    lh_err_clear(&err);
    rc = lh_store_copy(s, key, "stolen", &err);
    expect_error(rc, &err, LH_ENOTFOUND, 404, "object_not_found");
    assert_int_equal(lh_store_head(s, "stolen", &info, &err), LH_ENOTFOUND);
    char *path = lh_store_fs_path(s, key);
    if (path)
        print_error("local path for %s: %s\n", key, path);
    assert_null(path);
}

/* Every write of key is a 409 key_conflict (plain, create-only, copy onto it). */
static void
expect_unwritable(lh_store *s, const char *key, const char *copy_from)
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_store_put_buffer(s, key, "new", 3, 0, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
    lh_err_clear(&err);
    rc = lh_store_put_buffer(s, key, "new", 3, LH_PUT_CREATE_ONLY, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
    lh_err_clear(&err);
    rc = lh_store_copy(s, copy_from, key, &err);
    expect_error(rc, &err, LH_EEXIST, 409, "key_conflict");
}

static void
test_symlink_in_path(void **state)
{
    fixture *f = *state;
    char *outside = make_outside();
    /* a link at the top and one under a real folder */
    make_symlink(outside, f->root, "link");
    put_str(f->s, "real/kept", "inside");
    make_symlink(outside, f->root, "real/link");

    static const char *const reads[] = {"link/s.txt", "link/sub/file", "real/link/s.txt",
                                        "real/link/sub/file"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        expect_unreadable(f->s, reads[i]);
    static const char *const writes[] = {"link/new.txt",      "link/s.txt",
                                         "link/sub/new.txt",  "link/deeper/new.txt",
                                         "real/link/new.txt", "real/link/sub/file"};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        expect_unwritable(f->s, writes[i], "real/kept");
    expect_outside_untouched(outside);

    /* listings neither show nor enter the links */
    EXPECT_LIST(f->s, "", NULL, 100, NULL, "real/kept");
    EXPECT_LIST(f->s, "link/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "link/sub/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "real/link/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "real/link/sub/", NULL, 100, NULL, NULL);

    /* real objects beside the links work as ever and get a local path */
    lh_err err;
    put_str(f->s, "real/more", "m");
    EXPECT_CONTENT(f->s, "real/more", "m");
    char resolved[PATH_MAX];
    assert_non_null(realpath(f->root, resolved));
    char *want = join(resolved, "real/more");
    char *path = lh_store_fs_path(f->s, "real/more");
    assert_non_null(path);
    assert_string_equal(path, want);
    free(path);
    free(want);
    assert_int_equal(lh_store_delete(f->s, "real/more", &err), 0);
    assert_int_equal(lh_store_delete(f->s, "real/kept", &err), 0);
    /* "real" still holds the link: it stays, and so do both links */
    assert_true(is_symlink(f->root, "link"));
    assert_true(is_symlink(f->root, "real/link"));
    expect_outside_untouched(outside);
    lh_test_rm_rf(outside);
    free(outside);
}

static void
test_symlink_leaf(void **state)
{
    fixture *f = *state;
    char *outside = make_outside();
    char *secret = join(outside, "s.txt");
    char *missing = join(outside, "nope");
    put_str(f->s, "dir/plain", "plain");
    make_symlink(secret, f->root, "leak");
    make_symlink(secret, f->root, "dir/leak");
    make_symlink(outside, f->root, "dlink");
    make_symlink(missing, f->root, "dangling");
    make_symlink("dir/plain", f->root, "inner"); /* even one pointing inside the bucket */

    static const char *const links[] = {"leak", "dir/leak", "dlink", "dangling", "inner"};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        expect_unreadable(f->s, links[i]);
        expect_unwritable(f->s, links[i], "dir/plain");
        assert_true(is_symlink(f->root, links[i]));
    }
    struct stat st;
    assert_int_not_equal(lstat(missing, &st), 0);
    expect_outside_untouched(outside);
    EXPECT_CONTENT(f->s, "dir/plain", "plain");
    EXPECT_LIST(f->s, "", NULL, 100, NULL, "dir/plain");
    free(missing);
    free(secret);
    lh_test_rm_rf(outside);
    free(outside);
}

static void
test_symlinked_temp_dir(void **state)
{
    fixture *f = *state;
    char *outside = lh_test_mkdtemp("fs_outside_tmp_");
    make_symlink(outside, f->root, ".lh-tmp");
    lh_err err;
    lh_obj_info info;
    lh_err_clear(&err);
    int rc = lh_store_put_buffer(f->s, "k", "v", 1, 0, &err);
    expect_error(rc, &err, LH_EUNAVAIL, 503, "bucket_unavailable");
    assert_contains(err.detail, ".lh-tmp");
    lh_err_clear(&err);
    rc = lh_store_put_buffer(f->s, "k", "v", 1, LH_PUT_CREATE_ONLY, &err);
    expect_error(rc, &err, LH_EUNAVAIL, 503, "bucket_unavailable");
    assert_int_equal(lh_store_head(f->s, "k", &info, &err), LH_ENOTFOUND);
    assert_int_equal(count_entries(outside), 0);
    assert_true(is_symlink(f->root, ".lh-tmp"));

    /* a plain file there is refused the same way */
    char *tmp = join(f->root, ".lh-tmp");
    assert_int_equal(unlink(tmp), 0);
    write_text(f->root, ".lh-tmp", "");
    lh_err_clear(&err);
    rc = lh_store_put_buffer(f->s, "k", "v", 1, 0, &err);
    expect_error(rc, &err, LH_EUNAVAIL, 503, "bucket_unavailable");

    /* once it is gone, writes work again */
    assert_int_equal(unlink(tmp), 0);
    put_str(f->s, "k", "v");
    EXPECT_CONTENT(f->s, "k", "v");
    free(tmp);
    lh_test_rm_rf(outside);
    free(outside);
}

static void
test_list_skips_symlinks(void **state)
{
    fixture *f = *state;
    char *outside = make_outside();
    put_str(f->s, "docs/a.txt", "a");
    put_str(f->s, "docs/b/c.txt", "c");
    make_symlink("a.txt", f->root, "docs/alias.txt");
    make_symlink("b", f->root, "docs/blink");
    make_symlink("docs/a.txt", f->root, "top-alias");
    make_symlink(outside, f->root, "ext");
    EXPECT_LIST(f->s, "", NULL, 100, NULL, "docs/a.txt", "docs/b/c.txt");
    EXPECT_LIST(f->s, "docs/", NULL, 100, NULL, "docs/a.txt", "docs/b/c.txt");
    EXPECT_LIST(f->s, "docs/al", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "docs/blink/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "ext/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "ext/sub/", NULL, 100, NULL, NULL);
    EXPECT_LIST(f->s, "top", NULL, 100, NULL, NULL);
    expect_outside_untouched(outside);
    lh_test_rm_rf(outside);
    free(outside);
}

/* ---- a put racing a delete in the same folder ---------------------------------------------- */

typedef struct churner {
    lh_store *s;
    pthread_barrier_t *start;
    const char *key;
    int failures;
    int first_rc;
    lh_err first_err;
} churner;

enum { CHURN_ROUNDS = 300 };

/* Put then delete key, CHURN_ROUNDS times; each delete prunes the emptied folders. */
static void *
churn(void *arg)
{
    churner *c = arg;
    pthread_barrier_wait(c->start);
    for (int i = 0; i < CHURN_ROUNDS; i++) {
        lh_err err;
        lh_err_clear(&err);
        int flags = (i & 1) ? LH_PUT_CREATE_ONLY : 0;
        int rc = lh_store_put_buffer(c->s, c->key, "x", 1, flags, &err);
        if (rc == 0)
            rc = lh_store_delete(c->s, c->key, &err);
        if (rc != 0 && c->failures++ == 0) {
            c->first_rc = rc;
            c->first_err = err;
        }
    }
    return NULL;
}

static void
test_put_races_delete(void **state)
{
    fixture *f = *state;
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    churner c[2] = {{.s = f->s, .start = &start, .key = "race/deep/er/one"},
                    {.s = f->s, .start = &start, .key = "race/deep/er/two"}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, churn, &c[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
        if (c[i].failures)
            print_error("%s: %d of %d rounds failed, first: %d %s (%s)\n", c[i].key, c[i].failures,
                        CHURN_ROUNDS, c[i].first_rc, c[i].first_err.message, c[i].first_err.detail);
        assert_int_equal(c[i].failures, 0);
    }
    EXPECT_LIST(f->s, "", NULL, 100, NULL, NULL);
    /* the last delete pruned every folder */
    char *race = join(f->root, "race");
    struct stat st;
    assert_int_not_equal(lstat(race, &st), 0);
    free(race);
}

/* ---- sinks that stop with their own error ------------------------------------------------- */

static int
sink_returns(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    return *(const int *)ctx;
}

/* The size limit of get_buffer and any LH_E* a sink returns reach the caller as they are;
 * a sink that merely stops (1, or -1 from a failed write) is a 499 read_aborted. */
static void
expect_sink_errors(lh_store *s, const char *key)
{
    lh_buf buf;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_store_get_buffer(s, key, 4, &buf, NULL, &err);
    expect_error(rc, &err, LH_ETOOBIG, 413, "object_too_large");
    assert_contains(err.message, key);
    static const struct {
        int sink_rc, rc, status;
        const char *code;
    } cases[] = {
        {LH_ETOOBIG, LH_ETOOBIG, 413, "object_too_large"},
        {LH_ENOMEM, LH_ENOMEM, 503, "out_of_memory"},
        {LH_EIO, LH_EIO, 500, "read_failed"},
        {LH_ETIMEOUT, LH_ETIMEOUT, 408, "read_failed"},
        {LH_ECANCELED, LH_ECANCELED, 499, "read_aborted"},
        /* never mistaken for an unreachable bucket (that would start a rescue read) */
        {LH_EUNAVAIL, LH_ECANCELED, 499, "read_aborted"},
        {-1, LH_ECANCELED, 499, "read_aborted"},
        {1, LH_ECANCELED, 499, "read_aborted"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int sink_rc = cases[i].sink_rc;
        lh_err_clear(&err);
        rc = lh_store_get(s, key, 0, -1, sink_returns, &sink_rc, NULL, &err);
        expect_error(rc, &err, cases[i].rc, cases[i].status, cases[i].code);
    }
    lh_err_clear(&err);
    assert_int_equal(lh_store_get_buffer(s, key, 10, &buf, NULL, &err), 0);
    assert_string_equal(buf.data, "0123456789");
    lh_buf_free(&buf);
}

static void
test_sink_errors_fs(void **state)
{
    fixture *f = *state;
    put_str(f->s, "ten", "0123456789");
    expect_sink_errors(f->s, "ten");
}

/* A stand-in S3 server on loopback: answers n_requests GETs with 200 and body. */
typedef struct fake_s3 {
    int listen_fd;
    int port;
    int n_requests;
    const char *body;
    pthread_t thread;
} fake_s3;

static void *
fake_s3_serve(void *arg)
{
    fake_s3 *srv = arg;
    for (int i = 0; i < srv->n_requests; i++) {
        int conn = accept(srv->listen_fd, NULL, NULL);
        if (conn < 0)
            break;
        char req[8192];
        size_t got = 0;
        while (got < sizeof req - 1) {
            ssize_t r = recv(conn, req + got, sizeof req - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        char head[256];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: \"fake\"\r\n"
                         "Connection: close\r\n\r\n",
                         strlen(srv->body));
        /* the client may hang up early: no SIGPIPE */
        send(conn, head, (size_t)n, MSG_NOSIGNAL);
        send(conn, srv->body, strlen(srv->body), MSG_NOSIGNAL);
        close(conn);
    }
    return NULL;
}

static void
test_sink_errors_s3(void **state)
{
    (void)state;
    fake_s3 srv = {.n_requests = 10, .body = "0123456789"};
    srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(srv.listen_fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(srv.listen_fd, 8), 0);
    socklen_t addr_len = sizeof addr;
    assert_int_equal(getsockname(srv.listen_fd, (struct sockaddr *)&addr, &addr_len), 0);
    srv.port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&srv.thread, NULL, fake_s3_serve, &srv), 0);

    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", srv.port);
    lh_s3_options opt = {.endpoint = endpoint,
                         .region = "us-east-1",
                         .bucket = "b",
                         .prefix = "",
                         .path_style = true,
                         .access_key_id = "AKID",
                         .secret_access_key = "SECRET",
                         .retries = 0,
                         .connect_timeout_ms = 5000,
                         .request_timeout_ms = 5000};
    lh_store *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_store_s3_open(&opt, &s, &err), 0);
    expect_sink_errors(s, "ten");
    lh_store_free(s);
    assert_int_equal(pthread_join(srv.thread, NULL), 0);
    close(srv.listen_fd);
}

/* ---- a root that goes away ------------------------------------------------------------------ */

#define expect_unavailable(rc, err)                                                                \
    expect_error((rc), (err), LH_EUNAVAIL, 503, "bucket_unavailable")

static void
test_removed_root(void **state)
{
    fixture *f = *state;
    lh_err err;
    lh_obj_info info;
    lh_buf buf;
    lh_list_page page;
    assert_int_equal(lh_store_probe(f->s, &err), 0);
    put_str(f->s, "k", "v");

    lh_test_rm_rf(f->root);

    lh_err_clear(&err);
    expect_unavailable(lh_store_probe(f->s, &err), &err);
    assert_contains(err.detail, "No such file or directory");
    lh_err_clear(&err);
    expect_unavailable(lh_store_get_buffer(f->s, "k", 100, &buf, &info, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_get_buffer(f->s, "deep/er/k", 100, &buf, &info, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_head(f->s, "k", &info, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_put_buffer(f->s, "k", "v2", 2, 0, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_put_buffer(f->s, "new/k", "v", 1, LH_PUT_CREATE_ONLY, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_delete(f->s, "k", &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_list(f->s, "", NULL, 10, &page, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_copy(f->s, "k", "k2", &err), &err);
    int fd = -1;
    lh_err_clear(&err);
    expect_unavailable(lh_store_open_local(f->s, "k", &fd, &info, &err), &err);
    assert_int_equal(fd, -1);

    /* no operation brought the root back by itself */
    struct stat st;
    assert_int_not_equal(stat(f->root, &st), 0);

    /* a file where the folder was is just as unavailable */
    FILE *fp = fopen(f->root, "w");
    assert_non_null(fp);
    fclose(fp);
    lh_err_clear(&err);
    expect_unavailable(lh_store_probe(f->s, &err), &err);
    lh_err_clear(&err);
    expect_unavailable(lh_store_put_buffer(f->s, "k", "v", 1, 0, &err), &err);
    assert_int_equal(unlink(f->root), 0);

    /* once it is back, the store works again */
    assert_int_equal(mkdir(f->root, 0755), 0);
    assert_int_equal(lh_store_probe(f->s, &err), 0);
    lh_err_clear(&err);
    expect_error(lh_store_head(f->s, "k", &info, &err), &err, LH_ENOTFOUND, 404,
                 "object_not_found");
    put_str(f->s, "k", "back");
    EXPECT_CONTENT(f->s, "k", "back");
}

static void
test_open_errors(void **state)
{
    lh_store *s = (lh_store *)(uintptr_t)0x1;
    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_store_fs_open("", &s, &err), LH_EINVAL);
    assert_int_equal(lh_store_fs_open(NULL, &s, &err), LH_EINVAL);
    assert_true(s == (lh_store *)(uintptr_t)0x1);

    /* a root below a regular file cannot be created */
    char *file = lh_test_write_file("fs_notdir_", "x", 0600);
    char root[600];
    snprintf(root, sizeof root, "%s/bucket", file);
    lh_err_clear(&err);
    assert_int_equal(lh_store_fs_open(root, &s, &err), LH_EIO);
    assert_true(s == (lh_store *)(uintptr_t)0x1);
    assert_contains(err.detail, root);
    unlink(file);
    free(file);

    /* a missing root is created, parents included */
    char *base = lh_test_mkdtemp("fs_nested_");
    snprintf(root, sizeof root, "%s/one/two/three", base);
    assert_int_equal(lh_store_fs_open(root, &s, &err), 0);
    struct stat st;
    assert_int_equal(stat(root, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    put_str(s, "k", "v");
    EXPECT_CONTENT(s, "k", "v");
    lh_store_free(s);
    lh_store_free(NULL);
    assert_no_temp_files(root);
    lh_test_rm_rf(base);
    free(base);
}

/* ---- racing writers ---------------------------------------------------------------------- */

enum { RACERS = 8 };

typedef struct racer {
    lh_store *s;
    pthread_barrier_t *start;
    const char *key;
    int flags;
    char content[128];
    int rc;
    lh_err err;
} racer;

static void *
race(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    lh_err_clear(&r->err);
    r->rc = lh_store_put_buffer(r->s, r->key, r->content, strlen(r->content), r->flags, &r->err);
    return NULL;
}

/* RACERS threads put key at once with flags; returns the index of the one stored. */
static int
run_race(lh_store *s, const char *key, int flags, racer *r)
{
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
    pthread_t threads[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i].s = s;
        r[i].start = &start;
        r[i].key = key;
        r[i].flags = flags;
        /* different contents and lengths */
        snprintf(r[i].content, sizeof r[i].content, "writer %d %.*s", i, i * 9,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_int_equal(pthread_create(&threads[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    char *stored = get_string(s, key, NULL);
    int found = -1;
    for (int i = 0; i < RACERS; i++)
        if (strcmp(stored, r[i].content) == 0)
            found = i;
    if (found < 0)
        print_error("stored content '%s' is no writer's\n", stored);
    free(stored);
    assert_true(found >= 0);
    return found;
}

static void
test_concurrent_create_only(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 25; round++) {
        char key[64];
        snprintf(key, sizeof key, "race/round-%d/key", round);
        racer r[RACERS];
        int stored = run_race(f->s, key, LH_PUT_CREATE_ONLY, r);
        int winners = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            if (r[i].rc == 0) {
                winners++;
                winner = i;
            } else {
                expect_error(r[i].rc, &r[i].err, LH_EEXIST, 409, "object_exists");
            }
        }
        assert_int_equal(winners, 1);
        assert_int_equal(stored, winner);
    }
}

static void
test_concurrent_overwrite(void **state)
{
    fixture *f = *state;
    /* plain puts all succeed and the object is one writer's bytes, never a mix */
    for (int round = 0; round < 10; round++) {
        racer r[RACERS];
        run_race(f->s, "race/overwritten", 0, r);
        for (int i = 0; i < RACERS; i++)
            assert_int_equal(r[i].rc, 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_changes_etag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_prefix_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_in_skips_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_hides_temp_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_prefix_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_deep_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_in_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_leaf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_temp_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_skips_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_races_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_errors_fs, setup, teardown),
        cmocka_unit_test(test_sink_errors_s3),
        cmocka_unit_test_setup_teardown(test_removed_root, setup, teardown),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_concurrent_create_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_overwrite, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
