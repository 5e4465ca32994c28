broker_url = "memory://from-module"


class Django:
    APP_TASK_DEFAULT_QUEUE = "from-namespace"
