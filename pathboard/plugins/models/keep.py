"""(being written: this family's plugin lands with issue 3)"""
