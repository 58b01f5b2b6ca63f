# output 'a.txt' of rule a is written twice
rule a:
    output: "a.txt", "a.txt"
    shell: "echo x > {output[0]}"
