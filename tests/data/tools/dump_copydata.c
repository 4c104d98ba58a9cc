/*
 * Test-data tool, run by capture-golden.sh only (not part of outboxd).
 * Opens a logical replication connection, runs START_REPLICATION for a pgoutput slot and
 * writes the first CopyData payloads the walsender sends, byte for byte, as hex files:
 * <outdir>/frame-xlogdata-<n>.hex for the first N XLogData ('w') frames and
 * <outdir>/frame-keepalive.hex for the first primary keepalive ('k').
 * Usage: dump_copydata CONNINFO SLOT OUTDIR N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static void write_hex(const char *path, const char *buf, int len) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (int i = 0; i < len; i++) fprintf(f, "%02x", (unsigned char)buf[i]);
    fputc('\n', f);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s CONNINFO SLOT OUTDIR N\n", argv[0]);
        return 2;
    }
    int want = atoi(argv[4]);
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(conn));
        return 1;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names 'pub')", argv[2]);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        fprintf(stderr, "START_REPLICATION: %s", PQerrorMessage(conn));
        return 1;
    }
    PQclear(res);

    int xlog = 0, keepalive = 0;
    time_t deadline = time(NULL) + 30;
    while ((xlog < want || !keepalive) && time(NULL) < deadline) {
        char *buf = NULL;
        int len = PQgetCopyData(conn, &buf, 0);
        if (len < 0) {
            fprintf(stderr, "copy ended: %s", PQerrorMessage(conn));
            return 1;
        }
        char path[1024];
        if (buf[0] == 'w' && xlog < want) {
            snprintf(path, sizeof path, "%s/frame-xlogdata-%d.hex", argv[3], ++xlog);
            write_hex(path, buf, len);
        } else if (buf[0] == 'k' && !keepalive) {
            snprintf(path, sizeof path, "%s/frame-keepalive.hex", argv[3]);
            write_hex(path, buf, len);
            keepalive = 1;
        }
        PQfreemem(buf);
    }
    PQfinish(conn);
    if (xlog < want || !keepalive) {
        fprintf(stderr, "timed out: %d XLogData frames, %d keepalives\n", xlog, keepalive);
        return 1;
    }
    return 0;
}
