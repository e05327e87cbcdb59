/* cmd_isolation.c - placeholder until the isolation group lands; replaced by its owner. */
#include "cli.h"

int cmd_isolation(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("isolation: not built yet");
}
