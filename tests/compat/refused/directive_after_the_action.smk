# `threads:` comes after the action of rule a
rule a:
    output: "a.txt"
    shell: "echo x > {output}"
    threads: 2
