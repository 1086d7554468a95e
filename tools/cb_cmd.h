/* tools/cb_cmd.h - the subcommands of the cb tool, one file each. Each takes
 * the arguments after its name (argv[0] is the command) and returns the
 * process exit code: 0 ok, 1 failure, 2 usage error (cb result: 3 not
 * finished). */
#ifndef CB_CMD_H
#define CB_CMD_H

int cb_cmd_validate(int argc, char **argv);
int cb_cmd_bench(int argc, char **argv);
int cb_cmd_replay(int argc, char **argv);
int cb_cmd_inspect(int argc, char **argv);
int cb_cmd_submit(int argc, char **argv);
int cb_cmd_lifecycle(int argc, char **argv); /* cancel, suspend, resume */
int cb_cmd_up(int argc, char **argv);
int cb_cmd_down(int argc, char **argv);
int cb_cmd_watch(int argc, char **argv);
int cb_cmd_status(int argc, char **argv);
int cb_cmd_result(int argc, char **argv);
int cb_cmd_jobs(int argc, char **argv);
int cb_cmd_doctor(int argc, char **argv);
int cb_cmd_storage(int argc, char **argv);
int cb_cmd_sla(int argc, char **argv);
int cb_cmd_tenant(int argc, char **argv);
int cb_cmd_health(int argc, char **argv);

#endif /* CB_CMD_H */
