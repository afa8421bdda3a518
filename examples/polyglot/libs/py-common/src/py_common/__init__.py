def banner(name: str) -> str:
    return f"== {name} =="
