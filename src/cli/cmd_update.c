/* cmd_update.c - placeholder until the update group lands; replaced by its owner. */
#include "cli.h"

int cmd_update(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("update: not built yet");
}
int cmd_diode(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("diode: not built yet");
}
