"""(being written: this loader lands with issue 4)"""
