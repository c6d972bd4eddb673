print("bench: to do")
