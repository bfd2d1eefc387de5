"""A user's objective: declared here (light), trained in `tunesmith_demo_plugin.trainer`."""

from pydantic import BaseModel, ConfigDict, Field

from objectives import Objective


class DemoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=3, ge=1, le=100)


DEMO = Objective(
    name="demo_plugin",
    description="A damped parabola with a learning curve; registered by a separate package.",
    metric="loss",
    direction="minimize",
    space={
        "width": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
        "depth": {"type": "int", "low": 1, "high": 8},
    },
    train="tunesmith_demo_plugin.trainer:train",
    args_model=DemoArgs,
)
