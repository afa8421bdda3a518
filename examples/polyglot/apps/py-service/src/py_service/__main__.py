from py_common import banner

print(banner("py-service"))
