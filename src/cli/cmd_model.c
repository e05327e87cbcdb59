/* cmd_model.c - placeholder until the model group lands; replaced by its owner. */
#include "cli.h"

int cmd_model(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_usage_error("model: not built yet");
}
