/*
 * cli.h — subcommands of the lakehouse binary. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef LH_CLI_H
#define LH_CLI_H

int lh_cmd_serve(int argc, char **argv);
void lh_cmd_serve_help(void);

#endif
