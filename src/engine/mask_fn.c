/*
 * mask_fn.c — lh_mask_hash(VARCHAR) → VARCHAR: the keyed hash that masks a column a reader
 * may not see while keeping equal values equal (src/catalog/columns.c writes the SQL that
 * calls it). HMAC-SHA256 under a 32-byte server key, as 64 lowercase hex digits; NULL stays
 * NULL. The key lives only in this function's extra info, never in SQL text, so no plan,
 * log or error shows it. Thread-safe: the key is read-only after registration.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

static void
free_key(void *key)
{
    memset(key, 0, 32);
    free(key);
}

static void
mask_hash(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output)
{
    const uint8_t *key = duckdb_scalar_function_get_extra_info(info);
    idx_t n = duckdb_data_chunk_get_size(input);
    duckdb_vector in = duckdb_data_chunk_get_vector(input, 0);
    duckdb_string_t *values = duckdb_vector_get_data(in);
    uint64_t *valid = duckdb_vector_get_validity(in);
    duckdb_vector_ensure_validity_writable(output);
    uint64_t *out_valid = duckdb_vector_get_validity(output);
    for (idx_t row = 0; row < n; row++) {
        if (valid && !duckdb_validity_row_is_valid(valid, row)) {
            duckdb_validity_set_row_invalid(out_valid, row);
            continue;
        }
        char hex[65];
        lh_hmac_sha256_hex(key, 32, duckdb_string_t_data(&values[row]),
                           duckdb_string_t_length(values[row]), hex);
        duckdb_vector_assign_string_element_len(output, row, hex, 64);
    }
}

int
lh_engine__define_mask_hash(lh_engine *eng, const uint8_t key[32], lh_err *err)
{
    duckdb_connection con = NULL;
    duckdb_scalar_function fn = duckdb_create_scalar_function();
    duckdb_logical_type text = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    uint8_t *copy = lh_malloc(32);
    memcpy(copy, key, 32);
    duckdb_scalar_function_set_name(fn, LH_ENGINE_MASK_HASH_FN);
    duckdb_scalar_function_add_parameter(fn, text);
    duckdb_scalar_function_set_return_type(fn, text);
    duckdb_scalar_function_set_function(fn, mask_hash);
    duckdb_scalar_function_set_extra_info(fn, copy, free_key);
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError ||
        duckdb_register_scalar_function(con, fn) == DuckDBError)
        rc = lh_err_set(err, LH_EIO, 500, "engine_error", "could not define the masking hash");
    duckdb_disconnect(&con);
    duckdb_destroy_logical_type(&text);
    duckdb_destroy_scalar_function(&fn);
    return rc;
}
